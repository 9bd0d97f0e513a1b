"""Time the DeepFinder U-Net per convolution implementation: train steps and inference.

A train step is forward + backward + Adam update (lr 1e-4) on a [B, 48, 48, 48, 1] batch with
2 classes, jit-compiled, timed in steady state after one warm-up (compile) step.  Inference is
the forward pass + softmax on one cubic tile, reported as voxels per second.  Wall time and
process CPU time (all threads) are both printed, since the machine may have few cores.

    .venv/bin/python benchmarks/unet_benchmark.py                      # everything
    .venv/bin/python benchmarks/unet_benchmark.py --impls im2col --batches 8 --steps 2
    .venv/bin/python benchmarks/unet_benchmark.py --scaling [--scaling-sizes 64,128,192,256]

``--scaling`` prints instead how `templearn segment`'s tiled inference time grows with the
tomogram volume (x = y = size, z = 64; random `cpu-small` weights, the recipes' 64³ tiles
with an 8-voxel crop, 2 per call; each size timed after a warm-up segmentation of the same
shape), with the tiles run and the fitted exponent (`scaling.py`).

Anchors (DeepFinder, TensorFlow + oneDNN, same kind of 2-core machine): train step batch 8
≈ 5.3 s, batch 25 ≈ 15.5 s; segmentation ≈ 21-53k tomogram voxels/s.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from scaling import add_scaling_arguments, report_scaling, warm_timed, write_scaling_json

from templearn.unet.model import CONV_IMPLS, PRESETS, UNet, UNetConfig, parameter_count
from templearn.unet.params import TileParams

ANCHOR_STEP_S = {8: 5.3, 25: 15.5}
ANCHOR_SEGMENT = "21-53k vox/s"
#: The tiling of the shipped recipes (params/*.yaml: segment).
RECIPE_TILES = TileParams(tile=64, crop=8, batch=2)


def _cpu_flags() -> str:
    """The SIMD/matrix flags of this CPU that matter for float32/bf16 matrix products."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    keep = [f for f in flags if f.startswith(("avx512", "amx")) or f in ("avx2", "fma")]
    return " ".join(sorted(set(keep))) or "none"


def _timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``fn`` over ``repeats`` calls (after the caller warmed up)."""
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn())
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return float(np.median(walls)), float(np.median(cpus))


def make_train_step(model: UNet, lr: float = 1e-4):
    """A jit-compiled (params, opt_state, x, y) -> (params, opt_state, loss) Adam step."""
    graphdef, params = nnx.split(model, nnx.Param)
    tx = optax.adam(lr, b1=0.9, b2=0.999, eps=1e-8)

    def loss_fn(p, x, y):
        logits = nnx.merge(graphdef, p)(x)
        onehot = jax.nn.one_hot(y, logits.shape[-1], dtype=logits.dtype)  # no gather/scatter
        return -(onehot * jax.nn.log_softmax(logits, axis=-1)).sum(-1).mean()

    @jax.jit
    def step(p, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(p, x, y)
        updates, opt_state = tx.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state, loss

    return step, params, tx.init(params)


def bench_train(config: UNetConfig, batch: int, steps: int, size: int = 48) -> tuple[float, float]:
    """Steady-state (wall, CPU) seconds per train step."""
    model = UNet(config, rngs=nnx.Rngs(0))
    step, params, opt_state = make_train_step(model)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(batch, size, size, size, 1)), jnp.float32)
    y = jnp.asarray(rng.integers(0, config.classes, size=(batch, size, size, size)), jnp.int32)
    state = [params, opt_state]

    def run() -> jax.Array:
        state[0], state[1], loss = step(state[0], state[1], x, y)
        return loss

    jax.block_until_ready(run())  # compile + first step
    return _timed(run, steps)


def bench_segment(config: UNetConfig, tile: int, repeats: int) -> tuple[float, float]:
    """Steady-state (wall, CPU) seconds for softmax probabilities of one tile³ tile."""
    model = UNet(config, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model, nnx.Param)

    @jax.jit
    def predict(p, x):
        return jax.nn.softmax(nnx.merge(graphdef, p)(x), axis=-1)

    x = jnp.asarray(np.random.default_rng(0).normal(size=(1, tile, tile, tile, 1)), jnp.float32)
    jax.block_until_ready(predict(params, x))
    return _timed(lambda: predict(params, x), repeats)


def scaling(sizes: list[int]) -> list[dict]:
    """Seconds of tiled segmentation (cpu-small, random weights) against tomogram volume."""
    from templearn.unet.segment import predictor, segment, tile_starts
    from templearn.unet.store import new_model

    config = PRESETS["cpu-small"]
    predict = predictor(new_model(config, seed=0), RECIPE_TILES.batch)
    rng = np.random.default_rng(0)
    points, shapes, tiles = [], [], []
    for size in sizes:
        shape = (64, size, size)
        tomogram = rng.normal(size=shape).astype(np.float32)
        seconds, _ = warm_timed(partial(segment, tomogram, predict, config.classes,
                                        RECIPE_TILES))
        points.append((int(np.prod(shape)), seconds))
        shapes.append("×".join(map(str, shape[::-1])))
        tiles.append(int(np.prod([len(tile_starts(max(n, RECIPE_TILES.tile), RECIPE_TILES))
                                  for n in shape])))
    return [report_scaling("segment time (cpu-small)", "volume", points, "voxels",
                           {"tomogram": shapes, "tiles": tiles})]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impls", nargs="+", default=list(CONV_IMPLS), choices=CONV_IMPLS)
    parser.add_argument("--batches", nargs="+", type=int, default=[8, 25])
    parser.add_argument("--steps", type=int, default=2, help="timed steps after warm-up")
    parser.add_argument("--tile", type=int, default=112, help="inference tile edge (voxels)")
    parser.add_argument("--presets", nargs="+", default=["deepfinder", "cpu-small"])
    parser.add_argument(
        "--skip-xla-batch",
        type=int,
        default=25,
        help="skip 'xla' train steps at batches >= this (≈5x slower on CPU); 0 = never skip",
    )
    parser.add_argument("--no-segment", action="store_true")
    add_scaling_arguments(parser, "64,128,192,256", "the segmentation")
    args = parser.parse_args()
    if args.scaling:
        write_scaling_json(args.scaling_json, scaling(args.scaling_sizes))
        return

    print(f"jax {jax.__version__}, devices {jax.devices()}, os.cpu_count() {os.cpu_count()}")
    print(f"CPU flags: {_cpu_flags()}")
    print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    print("anchors (DeepFinder TF/oneDNN): step b8 5.3 s, b25 15.5 s; segment " + ANCHOR_SEGMENT)
    print()
    print(f"{'preset':<11} {'conv':<9} {'what':<14} {'wall s':>8} {'cpu s':>8} {'anchor':>14}")
    for name in args.presets:
        for impl in args.impls:
            config = UNetConfig(**{**PRESETS[name].__dict__, "conv": impl})
            if impl == args.impls[0]:
                n = parameter_count(UNet(config, rngs=nnx.Rngs(0)))
                print(f"# {name}: {n:,} parameters, widths {config.widths}")
            for batch in args.batches:
                if impl == "xla" and args.skip_xla_batch and batch >= args.skip_xla_batch:
                    print(f"{name:<11} {impl:<9} {'step b' + str(batch):<14} {'skipped':>8}")
                    continue
                wall, cpu = bench_train(config, batch, args.steps)
                anchor = f"{ANCHOR_STEP_S[batch]} s" if batch in ANCHOR_STEP_S else ""
                print(
                    f"{name:<11} {impl:<9} {'step b' + str(batch):<14} {wall:8.2f} {cpu:8.2f}"
                    f" {anchor:>14}",
                    flush=True,
                )
            if not args.no_segment and name == "deepfinder":
                wall, cpu = bench_segment(config, args.tile, repeats=2)
                rate = args.tile**3 / wall
                print(
                    f"{name:<11} {impl:<9} {f'seg {args.tile}^3':<14} {wall:8.2f} {cpu:8.2f}"
                    f" {ANCHOR_SEGMENT:>14}  -> {rate / 1e3:.0f}k vox/s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
