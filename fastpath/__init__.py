r"""fastpath: the certified almost-linear-time gradient of arXiv:2408.13233v2 (Algorithm 1, corrected).

Polynomial low-rank attention (Lemma I.1 / C.13, spec §2.5) with a proved relative error, the corrected fast
backward of spec §2.3–2.4 (causal: §2.7, heads: §2.9, residual: §2.8) and an entrywise certificate on
|fast - exact| for every output and gradient: a-posteriori by default (:mod:`fastpath.certificate`,
:mod:`fastpath.aposteriori`), the a-priori constants of spec §2.10 on request (:mod:`fastpath.apriori`). Usage::

    from fastpath import forward, backward
    trace = forward(X, layers, eps=1e-8, beta=None, causal=False, heads=1, residual=False, activation="identity",
                    degree=None, method="auto", exact_forward=False, certificate="a-posteriori")
    grads = backward(trace, dL_dout)        # reference.Grads fields + grads.bound (same fields)
    trace.degree, trace.rank, trace.R, trace.method, trace.madds, grads.madds

Thread safety: a trace owns read-only copies of its inputs; the only shared state is the polynomial cache of
:mod:`fastpath.poly` (see there).
"""

from fastpath.model import FastGrads, FastTrace, backward, forward

__all__ = ["FastGrads", "FastTrace", "backward", "forward"]
