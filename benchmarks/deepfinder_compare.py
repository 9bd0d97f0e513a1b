"""DeepFinder (TensorFlow) and templearn (JAX) side by side: U-Net train steps and segmentation.

Both run the same network (DeepFinder's 3D U-Net: widths 32/48/64, four bottleneck
convolutions) on the same random patches, each framework in its own subprocess: a train step
(forward + backward + Adam, lr 1e-4) on [B, 48, 48, 48, 1] patches with 2 classes, and
segmentation of one tile³ tile (softmax probabilities, one tile per call as both tools do).
Warm-up steps (graph tracing / XLA compilation) are excluded; the median of the timed
steps is reported as wall seconds and process CPU seconds (all threads), and as GFLOP per
CPU-second: the arithmetic of the task (XLA's count for the network with plain
convolutions, the same for both frameworks) over its CPU time. A last line times XLA:CPU's
float32 matrix product alone on the shapes `im2col_x` hands it (one 48³ sample, k·Cin
columns, Cout outputs, per level of the network) and on a large square-ish product: the
rate any im2col arrangement through XLA's products is bounded by.

DeepFinder is installed from PyPI into its own virtual environment (made once, then reused),
not into the project's; it trains by ``model.train_on_batch`` with its Tversky loss and
legacy Keras Adam, exactly as ``deepfinder.training.Train`` compiles it.  templearn uses
``benchmarks/unet_benchmark.py``'s train step (cross-entropy; the loss is a negligible
share of the step) and ``templearn.unet.segment.predictor``.  Neither framework's thread
settings are touched: TensorFlow's intra/inter-op pools and XLA:CPU's pool use all cores.

    .venv/bin/python benchmarks/deepfinder_compare.py
    .venv/bin/python benchmarks/deepfinder_compare.py --batches 8 --steps 1 --tile 48
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np

# cryoet-deepfinder 0.2.1 is the newest release on PyPI; it requires tensorflow==2.13.0rc0
# exactly (its only TensorFlow pin), which has wheels for the project's Python 3.11.
DEEPFINDER_VERSION = "0.2.1"
TENSORFLOW_VERSION = "2.13.0rc0"
DEFAULT_VENV = Path.home() / ".cache" / "templearn" / "deepfinder-venv"
MARKER = "templearn-deepfinder.json"  # written into the venv once the install succeeded
INSTALL_FAILED = 3


def ensure_venv(venv: Path) -> Path:
    """The DeepFinder venv's python, creating the venv and installing into it when needed."""
    python = venv / "bin" / "python"
    pins = {"cryoet-deepfinder": DEEPFINDER_VERSION, "tensorflow": TENSORFLOW_VERSION}
    marker = venv / MARKER
    if python.exists() and marker.exists() and json.loads(marker.read_text()) == pins:
        return python
    logfile = venv / "install.log"
    try:
        venv.mkdir(parents=True, exist_ok=True)
        logfile.touch()
    except OSError as error:
        print(f"deepfinder_compare: cannot write {venv}: {error}", file=sys.stderr)
        sys.exit(INSTALL_FAILED)
    print(f"installing cryoet-deepfinder {DEEPFINDER_VERSION} + tensorflow "
          f"{TENSORFLOW_VERSION} into {venv} (log: {logfile}) ...", flush=True)
    with open(logfile, "w") as log:
        steps = [[sys.executable, "-m", "venv", str(venv)],
                 [str(python), "-m", "pip", "install",
                  *(f"{name}=={version}" for name, version in pins.items())]]
        for cmd in steps:
            if subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                print(f"deepfinder_compare: '{' '.join(cmd[:4])} ...' failed; see {logfile}",
                      file=sys.stderr)
                sys.exit(INSTALL_FAILED)
    marker.write_text(json.dumps(pins))
    return python


def make_data(path: Path, batch: int, size: int, tile: int, classes: int) -> None:
    """Random train patches [B, s, s, s, 1] + integer labels, and one segmentation tile."""
    rng = np.random.default_rng(0)
    np.savez(path,
             x=rng.normal(size=(batch, size, size, size, 1)).astype(np.float32),
             y=rng.integers(0, classes, size=(batch, size, size, size)).astype(np.int32),
             tile=rng.normal(size=(1, tile, tile, tile, 1)).astype(np.float32))


def median_times(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall and process-CPU seconds of ``fn`` (which must finish its work) per call."""
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return float(np.median(walls)), float(np.median(cpus))


def _onednn_enabled() -> bool:
    """Whether TensorFlow runs its oneDNN kernels (on by default on Linux x86 since 2.9)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def deepfinder_child(task: str, data: dict, args: argparse.Namespace) -> dict:
    """DeepFinder's own model, loss, optimiser and Keras calls (runs in its venv)."""
    from importlib.metadata import version

    import tensorflow as tf
    from deepfinder import losses, models
    from tensorflow.keras.optimizers.legacy import Adam

    tf.keras.utils.set_random_seed(0)
    info = {"versions": {"tensorflow": tf.__version__,
                         "cryoet-deepfinder": version("cryoet-deepfinder")},
            "threads": f"TF intra/inter-op {tf.config.threading.get_intra_op_parallelism_threads()}"
                       f"/{tf.config.threading.get_inter_op_parallelism_threads()} (0 = all "
                       f"cores), oneDNN {'on' if _onednn_enabled() else 'off'}"}
    if task == "segment":
        tile = data["tile"]
        net = models.my_model(tile.shape[1], args.classes)
        for _ in range(args.warmup):
            net.predict(tile, batch_size=1, verbose=0)
        return {**info, "times": median_times(
            lambda: net.predict(tile, batch_size=1, verbose=0), args.seg_repeats)}
    batch = int(task)
    x = data["x"][:batch]
    y = tf.keras.utils.to_categorical(data["y"][:batch], args.classes).astype(np.float32)
    net = models.my_model(x.shape[1], args.classes)
    net.compile(optimizer=Adam(learning_rate=1e-4, beta_1=0.9, beta_2=0.999, epsilon=1e-8),
                loss=losses.tversky_loss, metrics=["accuracy"])
    for _ in range(args.warmup):
        net.train_on_batch(x, y)
    return {**info, "times": median_times(lambda: net.train_on_batch(x, y), args.steps)}


def _unet_benchmark() -> ModuleType:
    """benchmarks/unet_benchmark.py as a module (its train step and timer)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import unet_benchmark

    return unet_benchmark


def templearn_child(task: str, data: dict, args: argparse.Namespace) -> dict:
    """templearn's U-Net (``deepfinder`` preset) with the chosen convolution path."""
    from importlib.metadata import version

    import jax
    import jax.numpy as jnp
    from flax import nnx

    ub = _unet_benchmark()
    from templearn.unet.model import PRESETS, UNet, UNetConfig
    from templearn.unet.segment import predictor

    if task == "dot":
        return {"rates": dot_rates(args.steps)}
    config = UNetConfig(**{**PRESETS["deepfinder"].__dict__, "conv": args.conv,
                           "classes": args.classes})
    model = UNet(config, rngs=nnx.Rngs(0))
    info = {"versions": {"jax": jax.__version__, "flax": version("flax")},
            "threads": f"XLA:CPU default thread pool (all cores), conv {args.conv}, "
                       f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}"}
    plain = UNet(replace(config, conv="xla"), rngs=nnx.Rngs(0))  # for the FLOP count only
    if task == "segment":
        graphdef, state = nnx.split(plain)
        tile = jnp.asarray(data["tile"])
        forward = jax.jit(lambda s, t: nnx.merge(graphdef, s)(t))
        info["gflop"] = forward.lower(state, tile).cost_analysis()["flops"] / 1e9
        predict = predictor(model, 1)
        for _ in range(args.warmup):
            predict(data["tile"])
        return {**info, "times": ub._timed(lambda: predict(data["tile"]), args.seg_repeats)}
    batch = int(task)
    step, params, opt_state = ub.make_train_step(model)
    x = jnp.asarray(data["x"][:batch])
    y = jnp.asarray(data["y"][:batch])
    plain_step, plain_params, plain_opt = ub.make_train_step(plain)
    info["gflop"] = plain_step.lower(plain_params, plain_opt, x, y).cost_analysis()["flops"] / 1e9
    state = [params, opt_state]

    def run() -> jax.Array:
        state[0], state[1], loss = step(state[0], state[1], x, y)
        return loss

    for _ in range(args.warmup):
        jax.block_until_ready(run())
    return {**info, "times": ub._timed(run, args.steps)}


#: (M, K, N) of XLA products timed by `dot_rates`: `im2col_x`'s per-tap product of one 48³
#: sample at each level of the DeepFinder network (k·Cin columns, Cout outputs), and a
#: large product for the rate XLA reaches when operands are big.
DOT_SHAPES = {"level 1 (48³, 3·32 → 32)": (48**3, 96, 32),
              "level 2 (24³, 3·48 → 48)": (24**3, 144, 48),
              "bottleneck (12³, 3·64 → 64)": (12**3, 192, 64),
              "large (48³, 1024 → 256)": (48**3, 1024, 256)}


def dot_rates(repeats: int) -> dict[str, float]:
    """GFLOP per CPU-second of a jitted float32 [M, K] @ [K, N] for each `DOT_SHAPES`."""
    import jax
    import jax.numpy as jnp

    ub = _unet_benchmark()
    product = jax.jit(jnp.matmul)
    rng = np.random.default_rng(0)
    rates = {}
    for name, (m, k, n) in DOT_SHAPES.items():
        a = jnp.asarray(rng.normal(size=(m, k)), jnp.float32)
        b = jnp.asarray(rng.normal(size=(k, n)), jnp.float32)
        jax.block_until_ready(product(a, b))
        _, cpu = ub._timed(lambda a=a, b=b: jax.block_until_ready(product(a, b)),
                           max(repeats, 5))
        rates[name] = 2.0 * m * k * n / cpu / 1e9
    return rates


def run_child(python: Path, framework: str, task: str, argv: list[str]) -> dict:
    """Run one measurement in a fresh process; add its whole-process CPU and peak RSS."""
    cmd = [str(python), str(Path(__file__).resolve()), "--child", framework, task, *argv]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = "".join(err.readlines()[-15:])
            raise RuntimeError(f"{framework} {task} failed ({proc.returncode}):\n{tail}")
    result = json.loads(out.strip().splitlines()[-1])
    result["process_cpu"] = usage.ru_utime + usage.ru_stime
    result["peak_rss_gb"] = usage.ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux
    return result


def print_table(rows: list[tuple[str, str, dict, dict]], tile: int) -> None:
    """Markdown table: one row per framework and task, ratios on templearn's rows."""
    print("| task | batch | framework | wall s | CPU s | voxels/s (wall) | voxels/CPU-s | "
          "GFLOP/CPU-s | process CPU s | peak RSS GB | templearn/DeepFinder wall, CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for task, batch, df, tl in rows:
        for name, r in (("DeepFinder", df), ("templearn", tl)):
            wall, cpu = r["times"]
            if task == "segment":
                rates = f"{tile**3 / wall:,.0f} | {tile**3 / cpu:,.0f}"
                # throughput: higher is better, so the ratio is templearn rate / DeepFinder rate
                ratio = (f"{df['times'][0] / wall:.2f}x, {df['times'][1] / cpu:.2f}x"
                         " (rate)" if r is tl else "")
            else:
                rates = "– | –"
                ratio = (f"{wall / df['times'][0]:.2f}x, {cpu / df['times'][1]:.2f}x"
                         if r is tl else "")
            label = f"segment {tile}³" if task == "segment" else "train step"
            print(f"| {label} | {batch} | {name} | {wall:.2f} | {cpu:.2f} | {rates} | "
                  f"{tl['gflop'] / cpu:.0f} | {r['process_cpu']:.0f} | {r['peak_rss_gb']:.1f} "
                  f"| {ratio} |", flush=True)


def main() -> None:
    from templearn.unet.params import CONV_IMPLS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV,
                        help=f"DeepFinder's virtual environment (default {DEFAULT_VENV})")
    parser.add_argument("--batches", nargs="+", type=int, default=[8, 25])
    parser.add_argument("--size", type=int, default=48, help="train patch edge (voxels)")
    parser.add_argument("--tile", type=int, default=64, help="segmentation tile edge (voxels)")
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--conv", default="im2col_x", choices=CONV_IMPLS,
                        help="templearn convolution path (im2col_x: the CPU default)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps/calls first")
    parser.add_argument("--steps", type=int, default=2, help="timed train steps (median)")
    parser.add_argument("--seg-repeats", type=int, default=3, help="timed tiles (median)")
    parser.add_argument("--setup-only", action="store_true", help="only make the venv")
    args = parser.parse_args()

    python = ensure_venv(args.venv.expanduser())
    if args.setup_only:
        return
    cores = len(os.sched_getaffinity(0))
    print(f"{time.strftime('%Y-%m-%d %H:%M')}  cores: {cores} (os.cpu_count() "
          f"{os.cpu_count()}), load average {os.getloadavg()[0]:.1f} at start")
    child_argv = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
                  if k in ("classes", "conv", "warmup", "steps", "seg_repeats")]
    with tempfile.TemporaryDirectory(prefix="templearn-dfcompare-") as tmp:
        data = Path(tmp) / "patches.npz"
        make_data(data, max(args.batches), args.size, args.tile, args.classes)
        child_argv.append(f"--data={data}")
        rows = []
        for task in [*map(str, args.batches), "segment"]:  # interleaved, as the load varies
            df = run_child(python, "deepfinder", task, child_argv)
            tl = run_child(Path(sys.executable), "templearn", task, child_argv)
            batch = "1" if task == "segment" else task
            rows.append((task, batch, df, tl))
            print(f"# {task}: DeepFinder {df['times'][0]:.2f} s, templearn "
                  f"{tl['times'][0]:.2f} s wall", flush=True)
        dots = run_child(Path(sys.executable), "templearn", "dot", child_argv)["rates"]
    print(f"versions: {json.dumps({**rows[0][2]['versions'], **rows[0][3]['versions']})}")
    print(f"threads: DeepFinder {rows[0][2]['threads']}; templearn {rows[0][3]['threads']}")
    print(f"load average {os.getloadavg()[0]:.1f} at end; warm-up {args.warmup}, median of "
          f"{args.steps} steps / {args.seg_repeats} tiles; {args.classes} classes, "
          f"{args.size}³ patches")
    print()
    print_table(rows, args.tile)
    print()
    print("XLA:CPU float32 matrix product alone, GFLOP per CPU-second: "
          + "; ".join(f"{name} {rate:.0f}" for name, rate in dots.items()))


def child_main() -> None:
    """Entry point of a measurement subprocess: prints one JSON line on stdout."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=2, metavar=("FRAMEWORK", "TASK"))
    for name in ("classes", "warmup", "steps", "seg-repeats"):
        parser.add_argument(f"--{name}", type=int)
    parser.add_argument("--conv")
    parser.add_argument("--data")
    args = parser.parse_args()
    framework, task = args.child
    with np.load(args.data) as npz:
        data = {key: npz[key] for key in npz.files}
    child = deepfinder_child if framework == "deepfinder" else templearn_child
    print(json.dumps(child(task, data, args)), flush=True)


if __name__ == "__main__":
    child_main() if "--child" in sys.argv else main()
