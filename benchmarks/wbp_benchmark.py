"""Benchmark: builtin WBP of a 512×512×200 tomogram from 61 tilts (-60..60 step 2) on 2 CPU
cores, against astra-toolbox FBP_CPU run slice by slice over the same 512 Y slices.

Run: `OMP_NUM_THREADS=2 taskset -c 0,1 .venv/bin/python benchmarks/wbp_benchmark.py`
(add `--no-astra` to time ours only). Prints seconds for the matrix build, the filtering
and back-projection, the total, ASTRA's total and the ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from templearn.projector import backproject
from templearn.reconstruct.radial import filter_projections
from templearn.reconstruct.wbp import wbp_geometry


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = (a - a.mean()) / a.std()
    b = (b - b.mean()) / b.std()
    return float((a * b).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="tomogram x and y size")
    parser.add_argument("--thickness", type=int, default=200)
    parser.add_argument("--no-astra", action="store_true")
    args = parser.parse_args()
    n, nz = args.size, args.thickness
    angles = np.arange(-60.0, 61.0, 2.0)
    rng = np.random.default_rng(0)
    tilt_series = rng.normal(size=(len(angles), n, n)).astype(np.float32)

    start = time.perf_counter()
    geometry = wbp_geometry(angles, nz, n)
    _ = geometry.transpose
    built = time.perf_counter()
    filtered = filter_projections(tilt_series, angles, extended=True)
    filtered_at = time.perf_counter()
    ours = backproject(filtered, geometry)
    done = time.perf_counter()
    total = done - start
    print(f"ours: {n}x{n}x{nz} from {len(angles)} tilts")
    print(f"  matrix build        {built - start:6.2f} s")
    print(f"  filtering           {filtered_at - built:6.2f} s")
    print(f"  back-projection     {done - filtered_at:6.2f} s")
    print(f"  total               {total:6.2f} s  (goal < 10 s)")
    if args.no_astra:
        return

    import astra

    vol_geom = astra.create_vol_geom(nz, n)
    proj_geom = astra.create_proj_geom("parallel", 1.0, n, -np.deg2rad(angles))
    projector = astra.create_projector("linear", proj_geom, vol_geom)
    rec_id = astra.data2d.create("-vol", vol_geom)
    sino_id = astra.data2d.create("-sino", proj_geom, 0.0)
    cfg = astra.astra_dict("FBP")
    cfg.update(ProjectorId=projector, ProjectionDataId=sino_id, ReconstructionDataId=rec_id)
    algorithm = astra.algorithm.create(cfg)
    start = time.perf_counter()
    check = []
    for y in range(n):
        astra.data2d.store(sino_id, tilt_series[:, y, :])
        astra.algorithm.run(algorithm)
        if y % 128 == 0:
            check.append(ncc(ours[:, y, :], astra.data2d.get(rec_id)))
    astra_total = time.perf_counter() - start
    astra.algorithm.delete(algorithm)
    astra.data2d.delete([rec_id, sino_id])
    astra.projector.delete(projector)
    print(f"astra FBP_CPU (linear), {n} slices: {astra_total:6.2f} s")
    print(f"ratio astra / ours: {astra_total / total:.1f}x; "
          f"NCC ours vs astra on sampled slices (noise input): {min(check):.4f}")


if __name__ == "__main__":
    main()
