"""The JAX adapter on a plain jax attention (jax.vjp); skipped without the jax extra."""

import pytest

jax = pytest.importorskip("jax", reason="the jax adapter needs JAX: pip install 'altgrad[jax]'")

import jax.numpy as jnp  # noqa: E402

from reference.proptest import OracleFailure, verify  # noqa: E402


def jax_attention(X, W_Q, W_K, W_V, *, beta, causal, heads):
    n, d = X.shape
    split = lambda A: A.reshape(n, heads, d // heads).transpose(1, 0, 2)  # noqa: E731  (h, n, d_h)
    q, k, v = split(X @ W_Q), split(X @ W_K), split(X @ W_V)
    s = beta * q @ k.transpose(0, 2, 1)  # (h, n, n)
    if causal:
        s = jnp.where(jnp.tril(jnp.ones((n, n), dtype=bool)), s, -jnp.inf)
    return (jax.nn.softmax(s, axis=-1) @ v).transpose(1, 0, 2).reshape(n, d)  # (n, d)


def test_a_jax_attention_passes_in_float32():
    verify(jax_attention, framework="jax", precision="float32", max_examples=10)


def test_a_jax_attention_without_beta_is_caught():
    def no_beta(X, W_Q, W_K, W_V, *, beta, causal, heads):
        return jax_attention(X, W_Q, W_K, W_V, beta=1.0, causal=causal, heads=heads)

    with pytest.raises(OracleFailure, match="is wrong"):
        verify(no_beta, framework="jax", precision="float32", max_examples=25, shrink=False)


def test_a_jax_attention_passes_in_float64_inside_the_users_own_x64_scope():
    scope = getattr(jax, "enable_x64", None)
    if scope is None:
        pytest.skip("this jax has no jax.enable_x64 scope")
    with scope(True):
        verify(jax_attention, framework="jax", precision="float64", causal=True, max_examples=10)


def test_float64_without_x64_is_refused_with_the_setting_to_change():
    from reference.proptest.runner import adapter

    if jax.config.jax_enable_x64:
        pytest.skip("x64 is enabled globally in this session")
    with pytest.raises(ValueError, match="jax_enable_x64"):
        adapter("jax").precision_name("float64")
