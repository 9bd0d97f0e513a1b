"""DeepFinder U-Net: parameter count, shapes, input checks, conv paths equal nnx.Conv.

Compiling 3D convolutions and their gradients is slow on a CPU: the full-network tests and
most conv-path cases are marked slow (`pytest -m "not slow"` keeps a quick subset).
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
nnx = pytest.importorskip("flax.nnx")

import jax.numpy as jnp  # noqa: E402

from templearn.unet.model import (  # noqa: E402
    CONV_IMPLS,
    PRESETS,
    UNet,
    UNetConfig,
    conv3d,
    parameter_count,
    resolve_conv,
)

FAST_IMPLS = [impl for impl in CONV_IMPLS if impl != "xla"]


def _conv_case(k: int, cin: int, cout: int, impl: str):
    """A conv-path case; most compile for seconds to tens of seconds (3×3×3 kernels, the
    "shift" path, im2col's kernel gradient): a few small ones stay in the quick loop."""
    quick = (k, impl) in {(1, "im2col"), (1, "im2col_x"), (2, "im2col_x")}
    return pytest.param(impl, k, cin, cout, id=f"{k}-{cin}-{cout}-{impl}",
                        marks=() if quick else pytest.mark.slow)


CONV_CASES = [_conv_case(*shape, impl) for shape in [(3, 4, 5), (3, 1, 3), (2, 4, 3), (1, 4, 2)]
              for impl in FAST_IMPLS]


def _abstract(config: UNetConfig) -> UNet:
    """The model with shape-only parameters (no initialisation cost)."""
    return nnx.eval_shape(lambda: UNet(config, rngs=nnx.Rngs(0)))


@pytest.mark.parametrize("classes", [2, 5])
def test_parameter_count_matches_deepfinder(classes: int) -> None:
    model = _abstract(UNetConfig(classes=classes))
    assert parameter_count(model) == 902_928 + 33 * classes
    if classes == 2:
        assert parameter_count(model) == 902_994


def test_presets() -> None:
    from templearn.unet.params import PRESET_NAMES

    assert tuple(PRESETS) == PRESET_NAMES  # the choices of `templearn train --preset`
    assert PRESETS["deepfinder"] == UNetConfig()
    small = PRESETS["cpu-small"]
    assert parameter_count(_abstract(small)) < 902_994 // 4


def test_parameters_do_not_depend_on_conv_impl() -> None:
    states = [nnx.state(_abstract(UNetConfig(conv=impl)), nnx.Param) for impl in CONV_IMPLS]
    for state in states[1:]:
        assert jax.tree_util.tree_structure(state) == jax.tree_util.tree_structure(states[0])
        assert [a.shape for a in jax.tree_util.tree_leaves(state)] == [
            a.shape for a in jax.tree_util.tree_leaves(states[0])]


@pytest.mark.slow
def test_output_shape_and_logits() -> None:
    model = UNet(UNetConfig(widths=(2, 3, 4), bottleneck_convs=1), rngs=nnx.Rngs(0))
    x = jnp.zeros((2, 8, 12, 16, 1), jnp.float32)
    assert model(x).shape == (2, 8, 12, 16, 2)


@pytest.mark.parametrize("shape", [(1, 10, 8, 8, 1), (1, 8, 8, 6, 1)])
def test_non_multiple_of_4_rejected(shape: tuple[int, ...]) -> None:
    # Shape-only parameters: the check comes first, and initialising compiles for a minute.
    model = _abstract(UNetConfig(widths=(2, 3, 4), bottleneck_convs=1))
    with pytest.raises(ValueError, match="multiples of 4"):
        model(jnp.zeros(shape, jnp.float32))


def test_auto_conv_picks_the_cpu_path_on_cpu() -> None:
    assert UNetConfig().conv == "auto"
    expected = "im2col_x" if jax.default_backend() == "cpu" else "xla"
    assert resolve_conv("auto") == expected and resolve_conv("shift") == "shift"


def test_bad_config_rejected() -> None:
    with pytest.raises(ValueError, match="conv"):
        UNetConfig(conv="fft")
    with pytest.raises(ValueError, match="classes"):
        UNetConfig(classes=0)


@pytest.mark.parametrize(("impl", "k", "cin", "cout"), CONV_CASES)
def test_conv_paths_match_nnx_conv(impl: str, k: int, cin: int, cout: int) -> None:
    rng = np.random.default_rng(k * 10 + cin)
    conv = nnx.Conv(cin, cout, (k, k, k), padding="SAME", rngs=nnx.Rngs(1))
    conv.bias[...] = jnp.asarray(rng.normal(size=cout), jnp.float32)
    # Batch 3: im2col_x maps over the samples of a batch (and sums their kernel gradients).
    x = jnp.asarray(rng.normal(size=(3, 8, 8, 8, cin)), jnp.float32)
    weight = jnp.asarray(rng.normal(size=(3, 8, 8, 8, cout)), jnp.float32)

    graphdef, state = nnx.split(conv)

    def loss_ref(x, state):
        return jnp.sum(jnp.tanh(nnx.merge(graphdef, state)(x)) * weight)

    def loss_impl(x, kernel, bias):
        return jnp.sum(jnp.tanh(conv3d(x, kernel, bias, impl)) * weight)

    kernel, bias = conv.kernel[...], conv.bias[...]
    np.testing.assert_allclose(
        conv3d(x, kernel, bias, impl), conv(x), rtol=1e-5, atol=1e-5 * cin * k**3
    )
    gx_ref, gstate = jax.grad(loss_ref, argnums=(0, 1))(x, state)
    grads_ref = (gx_ref, gstate["kernel"][...], gstate["bias"][...])
    grads = jax.jit(jax.grad(loss_impl, argnums=(0, 1, 2)))(x, kernel, bias)
    for g, r in zip(grads, grads_ref, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4 * float(jnp.abs(r).max()))


@pytest.mark.slow
def test_unet_outputs_and_gradients_agree_across_impls() -> None:
    config = UNetConfig(widths=(2, 3, 4), bottleneck_convs=2)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 4, 8, 4, 1)), jnp.float32)
    results = {}
    for impl in CONV_IMPLS:
        model = UNet(UNetConfig(**{**config.__dict__, "conv": impl}), rngs=nnx.Rngs(0))
        graphdef, params = nnx.split(model, nnx.Param)

        def loss(p, graphdef=graphdef):
            return jnp.sum(jax.nn.log_softmax(nnx.merge(graphdef, p)(x))[..., 0])

        results[impl] = (model(x), jax.grad(loss)(params))
    ref_out, ref_grad = results["xla"]
    scale = float(max(jnp.abs(g).max() for g in jax.tree_util.tree_leaves(ref_grad)))
    for impl in FAST_IMPLS:
        out, grad = results[impl]
        np.testing.assert_allclose(out, ref_out, rtol=1e-4, atol=1e-5)
        for g, r in zip(
            jax.tree_util.tree_leaves(grad), jax.tree_util.tree_leaves(ref_grad), strict=True
        ):
            np.testing.assert_allclose(g, r, rtol=1e-3, atol=1e-4 * scale)
