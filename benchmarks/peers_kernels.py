r"""The peers of the fast path as plain numpy: kernelised (linear) attention with a feature map, forward + backward.

Both peers of issue 14 replace $\exp(\beta\, q \cdot k)$ by a feature inner product $\phi(q')\cdot\phi(k')$ with
$q' = \sqrt\beta\, q$, $k' = \sqrt\beta\, k$, and normalise by the *approximated* row sums (the correct normaliser):

.. math::
    \tilde s = \mathrm{diag}(A z)^{-1} A (B^\top h), \quad A = \phi(Q'),\ B = \phi(K'),\ z = B^\top 1_n.

* **FAVOR+** (Performer; Choromanski et al. 2021): positive orthogonal random features
  $\phi(x) = m^{-1/2} \exp(W x - |x|^2/2)$, $W$ ($m \times d$) from QR blocks of a Gaussian, rows rescaled by the
  norms of Gaussian vectors, so that $E[\phi(q)\cdot\phi(k)] = \exp(q\cdot k)$. A per-query and one global key
  factor (the usual stabiliser) cancel in the ratio exactly and are held constant in the backward.
* **Degree 2** (Alman–Song style): $\exp(x) \approx 1 + x + x^2/2$, $\phi(x) = [1, x, \mathrm{vec}(x x^\top)/\sqrt2]$,
  rank $1 + d + d^2$; $1 + x + x^2/2 \ge 1/2 > 0$, so the normaliser never vanishes.

Non-causal only. Loss $\langle G, \tilde s\rangle$; the backward is the chain rule through the ratio, written out
(checked against a dense route in ``tests/test_peers_bench.py``). Shapes: n tokens, d width, r features.
"""

from __future__ import annotations

import math

import numpy as np


def favor_weights(d: int, m: int, seed) -> np.ndarray:
    """(m, d) orthogonal random features: stacked Q factors of Gaussian d x d blocks, rows scaled by chi_d norms."""
    rng = np.random.default_rng(seed)
    blocks = []
    for _ in range(-(-m // d)):
        q, r = np.linalg.qr(rng.normal(size=(d, d)))  # (d, d) orthogonal
        blocks.append((q * np.sign(np.diag(r))).T)  # sign fix: Haar-distributed, so each row is uniform on the sphere
    W = np.concatenate(blocks)[:m]  # (m, d)
    return W * np.linalg.norm(rng.normal(size=(m, d)), axis=1)[:, None]


def favor_features(W: np.ndarray, per_row: bool):
    """phi(x) = exp(W x - |x|^2/2 - c) / sqrt(m) with c a per-row (queries) or global (keys) constant, and its VJP."""
    m = W.shape[0]

    def feat(Z):
        E = Z @ W.T - 0.5 * (Z * Z).sum(axis=1, keepdims=True)  # (n, m)
        E -= E.max(axis=1, keepdims=True) if per_row else E.max()
        P = np.exp(E) / math.sqrt(m)  # (n, m)

        def vjp(dP):
            T = dP * P  # (n, m)
            return T @ W - T.sum(axis=1, keepdims=True) * Z  # (n, d)

        return P, vjp

    return feat


def degree2_features(Z):
    """phi(x) = [1, x, vec(x x^T)/sqrt 2], (n, 1 + d + d^2), and its VJP."""
    n, d = Z.shape
    P = np.concatenate([np.ones((n, 1)), Z, (Z[:, :, None] * Z[:, None, :]).reshape(n, d * d) / math.sqrt(2)], axis=1)

    def vjp(dP):
        D = dP[:, 1 + d :].reshape(n, d, d)  # (n, d, d)
        return dP[:, 1 : 1 + d] + np.einsum("nab,nb->na", D + D.transpose(0, 2, 1), Z) / math.sqrt(2)  # (n, d)

    return P, vjp


def feature_forward(X, W_Q, W_K, W_V, beta: float, feat_q, feat_k):
    """Forward of kernelised attention; returns (s, state for :func:`feature_backward`). s is (n, d)."""
    c = math.sqrt(beta)
    Q, K, h = c * (X @ W_Q), c * (X @ W_K), X @ W_V  # (n, d) each
    A, vjp_a = feat_q(Q)  # (n, r)
    B, vjp_b = feat_k(K)  # (n, r)
    M, z = B.T @ h, B.sum(axis=0)  # (r, d), (r,)
    num, den = A @ M, A @ z  # (n, d), (n,)
    s = num / den[:, None]  # (n, d)
    return s, (X, W_Q, W_K, W_V, c, h, A, B, M, z, den, s, vjp_a, vjp_b)


def feature_backward(G, state):
    """dL/dX for L = <G, s> through the ratio, the two feature maps and the projections. (n, d)."""
    X, W_Q, W_K, W_V, c, h, A, B, M, z, den, s, vjp_a, vjp_b = state
    dnum = G / den[:, None]  # (n, d)
    dden = -(G * s).sum(axis=1) / den  # (n,)
    dA = dnum @ M.T + dden[:, None] * z[None, :]  # (n, r)
    dM, dz = A.T @ dnum, A.T @ dden  # (r, d), (r,)
    dB = h @ dM.T + dz[None, :]  # (n, r)
    dh = B @ dM  # (n, d)
    return c * (vjp_a(dA) @ W_Q.T + vjp_b(dB) @ W_K.T) + dh @ W_V.T  # (n, d)
