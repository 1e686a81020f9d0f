"""The oracle on code nobody here wrote: torch SDPA and a plain autograd transformer layer (issue 12 item 5).

Conventions mapped (spec §0.2): rows are tokens; logits beta X W_Q (X W_K)^T = beta X W X^T with W = W_Q W_K^T;
SDPA's ``is_causal`` keeps i >= j (diagonal included), as ours; ``scale`` is beta; heads are column blocks of
W_Q, W_K, W_V (Def. K.1), i.e. ``reshape(n, h, d_h)``. Skipped without the torch extra.
"""

import pytest

torch = pytest.importorskip("torch", reason="the torch adapter needs PyTorch: pip install 'altgrad[torch]'")

import torch.nn.functional as F  # noqa: E402

from reference.proptest import OracleFailure, oracle_test, verify  # noqa: E402
from reference.proptest.runner import adapter  # noqa: E402

EXAMPLES = 10  # the default run: seconds; test_sdpa_passes_500_examples (slow) is the acceptance sweep


def _heads(A, heads):
    n, d = A.shape
    return A.reshape(n, heads, d // heads).transpose(0, 1)  # (h, n, d_h)


def sdpa_attention(X, W_Q, W_K, W_V, *, beta, causal, heads):
    """torch.nn.functional.scaled_dot_product_attention on the paper's multi-head layer (no output projection)."""
    q, k, v = (_heads(X @ W, heads) for W in (W_Q, W_K, W_V))  # (h, n, d_h)
    o = F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=beta)  # (h, n, d_h)
    return o.transpose(0, 1).reshape(X.shape)  # (n, d)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_sdpa_passes_the_oracle(dtype, causal):
    verify(sdpa_attention, framework="torch", precision=dtype, causal=causal, max_examples=EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_sdpa_passes_500_examples(dtype):
    verify(sdpa_attention, framework="torch", precision=dtype, max_examples=500)


def test_sdpa_in_bfloat16_passes_with_the_bfloat16_tolerance():
    verify(sdpa_attention, framework="torch", precision=torch.bfloat16, max_examples=10, max_n=3, max_d=2)


class PlainAttention(torch.nn.Module):
    """A textbook multi-head self-attention layer with nn.Linear projections (weight = W^T), no output projection."""

    def __init__(self, d: int, heads: int, causal: bool):
        super().__init__()
        self.q, self.k, self.v = (torch.nn.Linear(d, d, bias=False, dtype=torch.float64) for _ in range(3))
        self.heads, self.causal = heads, causal

    def forward(self, x):
        n, d = x.shape
        q, k, v = (_heads(p(x), self.heads) for p in (self.q, self.k, self.v))  # (h, n, d_h)
        s = q @ k.transpose(1, 2) / (d // self.heads)  # (h, n, n) beta = 1/d_h, the main text
        if self.causal:
            s = s.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf"))
        return (s.softmax(dim=-1) @ v).transpose(0, 1).reshape(n, d)  # (n, d)


@pytest.mark.parametrize("causal", [False, True])
def test_a_plain_autograd_attention_module_passes(causal):
    module = PlainAttention(4, 2, causal)
    weights = {"W_Q": "q.weight.T", "W_K": "k.weight.T", "W_V": "v.weight.T"}
    verify(module, framework="torch", width=4, heads=2, beta=None, causal=causal, max_examples=EXAMPLES,
           adapter_options={"weights": weights})  # fmt: skip


ACT = {"identity": lambda x: x, "tanh": torch.tanh, "gelu": F.gelu, "softplus": F.softplus, "cube": lambda x: x**3}


def plain_model(X, layers, *, beta, causal, heads, residual, activation):
    """The m-layer model written directly in torch: attention, then g = phi(Z W_g), residual or not."""
    T = X
    for L in layers:
        n, d = T.shape
        q, k, v = (_heads(T @ L[w], heads) for w in ("W_Q", "W_K", "W_V"))  # (h, n, d_h)
        s = beta * (q @ k.transpose(1, 2))  # (h, n, n)
        if causal:
            s = s.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf"))
        A = (s.softmax(dim=-1) @ v).transpose(0, 1).reshape(n, d)  # (n, d)
        Z = T + A if residual else A
        if L["W_g"] is None:
            T = Z
        else:
            g = ACT[activation](Z @ L["W_g"])
            T = Z + g if residual else g
    return T


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_plain_autograd_transformer_stack_passes(dtype):
    verify(plain_model, framework="torch", kind="model", precision=dtype, max_examples=EXAMPLES, max_n=4, max_d=4)


def test_float32_arithmetic_behind_a_float64_claim_is_caught():
    def float32_inside(X, W_Q, W_K, W_V, *, beta, causal, heads):
        args = (a.to(torch.float32) for a in (X, W_Q, W_K, W_V))
        return sdpa_attention(*args, beta=beta, causal=causal, heads=heads).to(torch.float64)

    with pytest.raises(OracleFailure, match="is wrong"):  # every field: the worst is named
        verify(float32_inside, framework="torch", max_examples=EXAMPLES, shrink=False)


def test_a_causal_mask_without_its_diagonal_is_caught_in_torch():
    def strict_mask(X, W_Q, W_K, W_V, *, beta, causal, heads):
        n = X.shape[0]
        mask = torch.ones(n, n, dtype=torch.bool).tril(-1) | (torch.arange(n)[:, None] == 0)  # row 0 keeps itself
        q, k, v = (_heads(X @ W, heads) for W in (W_Q, W_K, W_V))
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=beta)
        return o.transpose(0, 1).reshape(X.shape)

    with pytest.raises(OracleFailure, match="is wrong"):
        verify(strict_mask, framework="torch", causal=True, max_examples=EXAMPLES, shrink=False)


@oracle_test(framework="torch", precision="float32", max_examples=10)
def test_the_decorator_turns_an_implementation_into_a_test(X, W_Q, W_K, W_V, *, beta, causal, heads):
    return sdpa_attention(X, W_Q, W_K, W_V, beta=beta, causal=causal, heads=heads)


def test_torch_dtypes_map_to_precisions_and_unknown_ones_are_refused():
    ad = adapter("torch")
    assert ad.precision_name(torch.bfloat16) == "bfloat16" and ad.precision_name("float32") == "float32"
    with pytest.raises(ValueError, match="precision: expected one of"):
        ad.precision_name(torch.int32)
