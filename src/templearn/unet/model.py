"""DeepFinder's 3D U-Net in Flax NNX, with convolution paths that are fast on CPU.

The architecture follows DeepFinder (Moebel et al. 2021) exactly: 3×3×3 'SAME' convolutions
with ReLU, no normalisation or dropout, two pooling levels, a four-convolution bottleneck and a
decoder of nearest-neighbour upsampling + 2×2×2 convolution + skip concatenation.  The network
returns logits; losses apply ``log_softmax`` themselves.

Every convolution keeps its parameters in an ``nnx.Conv`` (kernel ``(k, k, k, Cin, Cout)``,
bias ``(Cout,)``), so checkpoints do not depend on how the convolution is evaluated.
``UNetConfig.conv`` only chooses the implementation:

- ``"auto"`` (default): ``"im2col_x"`` when JAX runs on CPU, ``"xla"`` on a GPU/TPU.
- ``"xla"``: ``lax.conv_general_dilated`` (what ``nnx.Conv`` does).  XLA:CPU's 3D
  convolution is slow, but its memory use is modest; likely the best choice on GPU.
- ``"shift"``: sum over the k³ taps of shifted input views, each multiplied by its
  ``(Cin, Cout)`` weight slice (27 matrix products per 3×3×3 layer, no patch buffer).
- ``"im2col"``: all k³ shifted views concatenated along channels, then one matrix product with
  the ``(k³·Cin, Cout)`` kernel.  Needs a k³-times larger activation buffer (≈8 GB for the
  80-channel decoder layer at batch 8 of 48³), and its kernel gradient is a slow product.
- ``"im2col_x"``: the k views shifted along x concatenated along channels (a ``k·Cin``
  buffer), then k² matrix products over the (z, y) taps, one sample of the batch at a time
  (``lax.map``/``lax.scan``: XLA:CPU otherwise keeps the whole batch's temporaries, 21 GB
  for the full model at batch 8 of 48³; one at a time it needs 4.3 GB).  Fastest on CPU in
  ``benchmarks/unet_benchmark.py``: ≈3× less CPU time than "xla" for the full model.

The non-"xla" paths have a hand-written backward pass (``_conv_same``) so that only the layer
input is kept for the gradient, not its shifted copies.

Results agree with ``nnx.Conv`` to float32 rounding (``tests/test_unet_model.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
from flax import nnx

# ``UNetConfig.conv`` may also be "auto": "im2col_x" on CPU, "xla" on accelerators.
from templearn.unet.params import CONV_CHOICES, CONV_IMPLS


@dataclass(frozen=True)
class UNetConfig:
    """Network shape and convolution implementation.

    ``widths`` are the channel counts of the level-1 convolutions, the level-2 convolutions and
    the bottleneck.  ``conv`` picks the convolution implementation (``CONV_CHOICES``);
    parameters and results are the same for every choice.
    """

    classes: int = 2
    widths: tuple[int, int, int] = (32, 48, 64)
    bottleneck_convs: int = 4
    conv: str = "auto"

    def __post_init__(self) -> None:
        if self.classes < 1:
            raise ValueError(f"classes must be >= 1, got {self.classes}")
        if len(self.widths) != 3 or min(self.widths) < 1:
            raise ValueError(f"widths must be three positive ints, got {self.widths}")
        if self.bottleneck_convs < 1:
            raise ValueError(f"bottleneck_convs must be >= 1, got {self.bottleneck_convs}")
        if self.conv not in CONV_CHOICES:
            raise ValueError(f"conv must be one of {CONV_CHOICES}, got {self.conv!r}")


PRESETS: dict[str, UNetConfig] = {
    "deepfinder": UNetConfig(),
    "cpu-small": UNetConfig(widths=(16, 24, 32), bottleneck_convs=2),
}


def _same_pads(k: int) -> tuple[int, int]:
    """Low/high padding of a 'SAME' convolution with kernel size k (as XLA and Keras pad)."""
    lo = (k - 1) // 2
    return lo, k - 1 - lo


def _view(xp: jax.Array, dz: int, dy: int, dx: int, shape: tuple[int, ...]) -> jax.Array:
    """The [B, Z, Y, X, C] window of padded ``xp`` starting at spatial offset (dz, dy, dx)."""
    _, nz, ny, nx, _ = shape
    return xp[:, dz : dz + nz, dy : dy + ny, dx : dx + nx, :]


def _correlate(x: jax.Array, w: jax.Array, pads: tuple[int, int], impl: str) -> jax.Array:
    """Bias-free 3D cross-correlation of [B, Z, Y, X, Cin] ``x`` with a (k,k,k,Cin,Cout) ``w``.

    Every spatial axis is zero-padded by ``pads`` = (low, high) with low + high = k - 1, so
    the output has the input's spatial size.
    """
    if impl == "im2col_x" and x.shape[0] > 1:
        # One sample at a time: XLA:CPU then keeps one sample's temporaries, not the batch's.
        return jax.lax.map(lambda xi: _correlate(xi[None], w, pads, impl)[0], x)
    k, cin, cout = w.shape[0], w.shape[3], w.shape[4]
    xp = jnp.pad(x, ((0, 0), pads, pads, pads, (0, 0)))
    taps = [(dz, dy, dx) for dz in range(k) for dy in range(k) for dx in range(k)]
    if impl == "im2col" or cin * k**3 <= 64:
        # Tiny channel counts (the 1-channel input layer) always use one big product.
        cols = jnp.concatenate([_view(xp, *t, x.shape) for t in taps], axis=-1)
        return cols @ w.reshape(-1, cout)
    if impl == "shift":
        acc = _view(xp, *taps[0], x.shape) @ w[taps[0]]
        for t in taps[1:]:
            acc = acc + _view(xp, *t, x.shape) @ w[t]
        return acc
    if impl == "im2col_x":
        nx = x.shape[3]
        xs = jnp.concatenate([xp[:, :, :, dx : dx + nx, :] for dx in range(k)], axis=-1)
        wx = w.reshape(k, k, k * cin, cout)
        acc = None
        for dz in range(k):
            for dy in range(k):
                term = _view(xs, dz, dy, 0, x.shape) @ wx[dz, dy]
                acc = term if acc is None else acc + term
        return acc
    raise ValueError(f"unknown conv implementation {impl!r}; choose from {CONV_IMPLS}")


def _kernel_grad(x: jax.Array, g: jax.Array, k: int, pads: tuple[int, int], impl: str):
    """Gradient of ``_correlate(x, w, pads)`` with respect to ``w``, given output cotangent g."""
    if impl == "im2col_x" and x.shape[0] > 1:
        def accumulate(total, pair):
            xi, gi = pair
            return total + _kernel_grad(xi[None], gi[None], k, pads, impl), None

        zero = jnp.zeros((k, k, k, x.shape[-1], g.shape[-1]), x.dtype)
        return jax.lax.scan(accumulate, zero, (x, g))[0]
    cin, cout = x.shape[-1], g.shape[-1]
    xp = jnp.pad(x, ((0, 0), pads, pads, pads, (0, 0)))
    g2 = g.reshape(-1, cout)
    taps = [(dz, dy, dx) for dz in range(k) for dy in range(k) for dx in range(k)]
    if impl == "im2col" or cin * k**3 <= 64:
        cols = jnp.concatenate([_view(xp, *t, x.shape) for t in taps], axis=-1)
        return (cols.reshape(-1, k**3 * cin).T @ g2).reshape(k, k, k, cin, cout)
    if impl == "shift":
        grads = [_view(xp, *t, x.shape).reshape(-1, cin).T @ g2 for t in taps]
        return jnp.stack(grads).reshape(k, k, k, cin, cout)
    # im2col_x
    nx = x.shape[3]
    xs = jnp.concatenate([xp[:, :, :, dx : dx + nx, :] for dx in range(k)], axis=-1)
    grads = [
        _view(xs, dz, dy, 0, x.shape).reshape(-1, k * cin).T @ g2
        for dz in range(k)
        for dy in range(k)
    ]
    return jnp.stack(grads).reshape(k, k, k, cin, cout)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_same(x: jax.Array, w: jax.Array, impl: str) -> jax.Array:
    """'SAME' correlation with a hand-written backward pass.

    Plain autodiff of the shifted-view products would keep every shifted copy of the input
    alive until the backward pass (k³ times the activation memory); here only ``x`` is kept
    and the input gradient is itself a correlation (flipped, transposed kernel).
    """
    return _correlate(x, w, _same_pads(w.shape[0]), impl)


def _conv_same_fwd(x: jax.Array, w: jax.Array, impl: str):
    return _conv_same(x, w, impl), (x, w)


def _conv_same_bwd(impl: str, res, g: jax.Array):
    x, w = res
    k = w.shape[0]
    lo, hi = _same_pads(k)
    w_t = jnp.flip(w, axis=(0, 1, 2)).swapaxes(3, 4)
    gx = _correlate(g, w_t, (hi, lo), impl)
    gw = _kernel_grad(x, g, k, (lo, hi), impl)
    return gx, gw


_conv_same.defvjp(_conv_same_fwd, _conv_same_bwd)


def conv3d(x: jax.Array, kernel: jax.Array, bias: jax.Array, impl: str) -> jax.Array:
    """'SAME' 3D convolution of channels-last ``x`` with a ``(k, k, k, Cin, Cout)`` kernel.

    All implementations compute the same cross-correlation as ``nnx.Conv``; they differ only
    in how the work is handed to XLA (see the module docstring).
    """
    if impl not in CONV_IMPLS:
        raise ValueError(f"unknown conv implementation {impl!r}; choose from {CONV_IMPLS}")
    k = kernel.shape[0]
    if impl == "xla":
        lo, hi = _same_pads(k)
        y = jax.lax.conv_general_dilated(
            x,
            kernel,
            window_strides=(1, 1, 1),
            padding=[(lo, hi)] * 3,
            dimension_numbers=("NDHWC", "DHWIO", "NDHWC"),
        )
        return y + bias
    if k == 1:
        return x @ kernel[0, 0, 0] + bias
    return _conv_same(x, kernel, impl) + bias


def max_pool2(x: jax.Array) -> jax.Array:
    """2×2×2 max pooling with stride 2 of a [B, Z, Y, X, C] array (even sizes)."""
    b, nz, ny, nx, c = x.shape
    return x.reshape(b, nz // 2, 2, ny // 2, 2, nx // 2, 2, c).max(axis=(2, 4, 6))


def upsample2(x: jax.Array) -> jax.Array:
    """Nearest-neighbour ×2 upsampling of the spatial axes of a [B, Z, Y, X, C] array."""
    b, nz, ny, nx, c = x.shape
    x = jnp.broadcast_to(x[:, :, None, :, None, :, None, :], (b, nz, 2, ny, 2, nx, 2, c))
    return x.reshape(b, 2 * nz, 2 * ny, 2 * nx, c)


class _Conv(nnx.Module):
    """A 'SAME' 3D convolution (+ optional ReLU) whose parameters live in an ``nnx.Conv``."""

    def __init__(self, cin: int, cout: int, k: int, impl: str, relu: bool, *, rngs: nnx.Rngs):
        # Keras' defaults (Glorot-uniform kernel, zero bias), as in DeepFinder.
        self.conv = nnx.Conv(
            cin,
            cout,
            (k, k, k),
            padding="SAME",
            kernel_init=nnx.initializers.glorot_uniform(),
            rngs=rngs,
        )
        self.impl = impl
        self.relu = relu

    def __call__(self, x: jax.Array) -> jax.Array:
        y = conv3d(x, self.conv.kernel[...], self.conv.bias[...], self.impl)
        return jax.nn.relu(y) if self.relu else y


def resolve_conv(conv: str) -> str:
    """The implementation behind a ``UNetConfig.conv`` choice on this machine."""
    if conv != "auto":
        return conv
    return "im2col_x" if jax.default_backend() == "cpu" else "xla"


class UNet(nnx.Module):
    """DeepFinder's 3D U-Net: [B, Z, Y, X, 1] float32 → logits [B, Z, Y, X, classes].

    Z, Y and X must be multiples of 4 (two 2× poolings).  No softmax is applied.
    """

    def __init__(self, config: UNetConfig, *, rngs: nnx.Rngs):
        self.config = config
        w1, w2, w3 = config.widths
        impl = resolve_conv(config.conv)

        def conv(cin: int, cout: int, k: int = 3, relu: bool = True) -> _Conv:
            return _Conv(cin, cout, k, impl, relu, rngs=rngs)

        self.enc1 = nnx.List([conv(1, w1), conv(w1, w1)])
        self.enc2 = nnx.List([conv(w1, w2), conv(w2, w2)])
        self.bottleneck = nnx.List(
            [conv(w2, w3)] + [conv(w3, w3) for _ in range(config.bottleneck_convs - 1)]
        )
        self.up2 = conv(w3, w3, k=2)
        self.dec2 = nnx.List([conv(w3 + w2, w2), conv(w2, w2)])
        self.up1 = conv(w2, w2, k=2)
        self.dec1 = nnx.List([conv(w2 + w1, w1), conv(w1, w1)])
        self.head = conv(w1, config.classes, k=1, relu=False)

    def __call__(self, x: jax.Array) -> jax.Array:
        if x.ndim != 5 or x.shape[-1] != 1:
            raise ValueError(f"expected input [batch, z, y, x, 1], got shape {x.shape}")
        if any(n % 4 for n in x.shape[1:4]):
            raise ValueError(
                f"spatial input sizes must be multiples of 4 (two 2x poolings), got {x.shape[1:4]}"
            )
        x = x.astype(jnp.float32)
        for layer in self.enc1:
            x = layer(x)
        skip1 = x
        x = max_pool2(x)
        for layer in self.enc2:
            x = layer(x)
        skip2 = x
        x = max_pool2(x)
        for layer in self.bottleneck:
            x = layer(x)
        x = jnp.concatenate([self.up2(upsample2(x)), skip2], axis=-1)
        for layer in self.dec2:
            x = layer(x)
        x = jnp.concatenate([self.up1(upsample2(x)), skip1], axis=-1)
        for layer in self.dec1:
            x = layer(x)
        return self.head(x)


def parameter_count(model: nnx.Module) -> int:
    """Number of trainable scalars (``nnx.Param``) in ``model``."""
    params = nnx.state(model, nnx.Param)
    return sum(int(p.size) for p in jax.tree_util.tree_leaves(params))
