"""Issue 13 item 5: mpmath work runs in per-call contexts, so threads neither interfere nor leak precision.

Four worker threads run, round after round, the fast path (forward + backward), the mpmath reference at dps = 60
(forward + backward) and the uncached certificate search of ``fastpath.poly`` (its 32-digit arithmetic), while a
fifth thread keeps changing the *global* mpmath precision with ``workdps`` (what a user's own mpmath code does).
Every result must be bit-identical to a sequential run, and ``mpmath.mp`` must be as it was afterwards.
"""

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import mpmath
import numpy as np
from hypothesis import given, seed
from hypothesis import strategies as st

import fastpath
import reference
from fastpath.poly import _certified, round_up_R
from reference import Layer

ROUNDS = 100


def _problem():
    rng = np.random.default_rng(13)
    n, d = 6, 2
    X = rng.uniform(-1, 1, (n, d))
    layers = [Layer(*(rng.uniform(-1, 1, (d, d)) for _ in range(4))) for _ in range(2)]
    return X, layers, rng.uniform(-1, 1, (n, d))


X, LAYERS, G = _problem()


def fast_job():
    tr = fastpath.forward(X, LAYERS, eps=1e-6, activation="tanh")
    g = fastpath.backward(tr, G)
    return [tr.output, g.dX] + [a for lg in g.layers for a in (lg.dW_Q, lg.dW_K, lg.dW_V, lg.dW_g)]


def mp_job():
    tr = reference.forward(X[:3], LAYERS[:1], activation="tanh", backend="mpmath", dps=60)
    g = reference.backward(tr, G[:3])
    lg = g.layers[0]
    return [tr.output, g.dX, lg.dW_Q, lg.dW_K, lg.dW_V, lg.dW_g]


def poly_job():
    pc = _certified.__wrapped__(round_up_R(1.0), 1e-5, "chebyshev")  # the arithmetic itself, not the cache
    return [pc.coeffs, np.array([pc.err, pc.abs_sum, pc.degree])]


JOBS = (fast_job, mp_job, mp_job, poly_job)


def _bits(arrays) -> list:
    """Exact content: float64 bytes, or the (sign, mantissa, exponent, bits) of every mpf."""
    out = []
    for a in arrays:
        a = np.asarray(a)
        out.append([x._mpf_ for x in a.flat] if a.dtype == object else a.tobytes())
    return out


def _antagonist(stop: threading.Event):
    k = 0
    while not stop.is_set():
        with mpmath.workdps((5, 15, 100)[k % 3]):  # a user's thread changing the global precision
            mpmath.exp(mpmath.mpf(1) / 3)
        k += 1


def test_threaded_results_are_bit_identical_to_sequential_ones_and_leave_mpmath_mp_alone():
    before = (mpmath.mp.prec, mpmath.mp.dps)
    want = [_bits(job()) for job in JOBS]
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: maximal interleaving
    stop = threading.Event()
    spoiler = threading.Thread(target=_antagonist, args=(stop,))
    spoiler.start()
    try:
        with ThreadPoolExecutor(max_workers=len(JOBS)) as pool:
            for r in range(ROUNDS):
                got = [f.result() for f in [pool.submit(job) for job in JOBS]]
                for job, w, g in zip(JOBS, want, got, strict=True):
                    assert _bits(g) == w, f"round {r}: {job.__name__} differs from its sequential result"
    finally:
        stop.set()
        spoiler.join()
        sys.setswitchinterval(old_interval)
    assert (mpmath.mp.prec, mpmath.mp.dps) == before


def test_mpmath_backend_results_do_not_depend_on_the_global_precision():
    want_mp, want_poly = _bits(mp_job()), _bits(poly_job())
    for dps in (5, 200):
        with mpmath.workdps(dps):
            assert _bits(mp_job()) == want_mp, f"the mpmath reference changed under a global precision of {dps}"
            assert _bits(poly_job()) == want_poly, f"the certificate changed under a global precision of {dps}"


def test_mpmath_backend_numbers_carry_the_requested_precision():
    tr = reference.forward(X[:3], LAYERS[:1], backend="mpmath", dps=60)
    x = tr.output[0, 0]
    assert x.context.dps == 60 and x.context is not mpmath.mp


def test_private_context_numbers_survive_pickling_for_process_pools():
    import pickle

    tr = reference.forward(X[:3], LAYERS[:1], backend="mpmath", dps=60)
    back = pickle.loads(pickle.dumps(tr))
    assert _bits([back.output]) == _bits([tr.output])
    assert back.output[0, 0].context.dps == 60 and back.backend.ctx is not tr.backend.ctx


@seed(5)
@given(st.integers(20, 80), st.integers(2, 400), st.integers(0, 2**32 - 1))
def test_any_global_precision_leaves_a_private_context_result_unchanged(dps, global_dps, s):
    rng = np.random.default_rng(s)
    Xs = rng.uniform(-2, 2, (2, 2))
    Ls = [Layer(*(rng.uniform(-1, 1, (2, 2)) for _ in range(4)))]
    want = _bits([reference.forward(Xs, Ls, activation="gelu", backend="mpmath", dps=dps).output])
    with mpmath.workdps(global_dps):
        got = _bits([reference.forward(Xs, Ls, activation="gelu", backend="mpmath", dps=dps).output])
    assert got == want
