"""The IMOD backend: `newstack` (binning), `tilt` (WBP / fake SIRT), `trimvol -rx`.

Runs the reference workflow of `notes/imod-tilt.md` in a temporary directory (never the
current one), each program called with an argument list (no shell); a program that fails
raises ExternalToolError naming a log of its command and output, kept in the system's
temporary directory. The result is read back as `[z, y, x]`, the orientation of the
builtin backend. IMOD's own value scale and its output centre (`n/2 + 0.5`, 1-based,
integer part: one pixel off `(n - 1)/2` for odd sizes) are kept.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from templearn.errors import ExternalToolError, InputError
from templearn.mrc import Volume, read_mrc, write_mrc
from templearn.progress import log
from templearn.reconstruct.radial import RadialFilter

PROGRAMS = ("newstack", "tilt", "trimvol")


def require_imod() -> None:
    """InputError unless the IMOD programs this backend runs are on PATH."""
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if missing:
        raise InputError(f"--backend imod needs IMOD on PATH; not found: {', '.join(missing)}")


def newstack_command(stack: str, binned: str, factor: float) -> list[str]:
    """`newstack` reduction with the Lanczos 3-lobe antialias filter."""
    size = (["-bin", str(int(factor))] if float(factor).is_integer()
            else ["-shrink", f"{factor:g}"])
    return ["newstack", "-input", stack, "-output", binned, *size, "-antialias", "6"]


def tilt_command(stack: str, angles: str, output: str, thickness: int, radial: RadialFilter
                 ) -> list[str]:
    """`tilt` in the reference workflow's settings, float output."""
    command = ["tilt", "-InputProjections", stack, "-OutputFile", output, "-TILTFILE", angles,
               "-THICKNESS", str(thickness), "-RADIAL", f"{radial.cutoff:g},{radial.falloff:g}",
               "-FalloffIsTrueSigma", "1", "-MODE", "2", "-PERPENDICULAR", "-AdjustOrigin"]
    if radial.fake_sirt_iterations > 0:
        command += ["-FakeSIRTiterations", str(radial.fake_sirt_iterations)]
    return command


def trimvol_command(rec: str, output: str) -> list[str]:
    """`trimvol -rx`: rotate the `-PERPENDICULAR` output so that Z is the slowest axis."""
    return ["trimvol", "-rx", rec, output]


def _run(command: list[str], workdir: Path) -> None:
    """Run one IMOD program in `workdir`; ExternalToolError naming a kept log if it fails."""
    log(f"imod: {' '.join(command)}")
    try:
        done = subprocess.run(command, cwd=workdir, capture_output=True, text=True,
                              check=False)
    except OSError as exc:
        raise ExternalToolError(f"IMOD {command[0]} could not run ({exc.strerror})") from None
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        last = next((line.strip() for line in reversed(output.splitlines()) if line.strip()),
                    "no output")
        handle, log_path = tempfile.mkstemp(prefix=f"templearn-imod-{command[0]}-",
                                            suffix=".log")
        with os.fdopen(handle, "w") as log_file:
            log_file.write(f"$ {' '.join(command)}\n# exit status {done.returncode}\n"
                           f"{output}\n")
        raise ExternalToolError(f"IMOD {command[0]} failed (exit status {done.returncode}): "
                                f"{last}", log_path)


def imod_reconstruct(images: np.ndarray, angles_deg: np.ndarray, pixel_size: float,
                     thickness: int, radial: RadialFilter, bin_factor: float = 1.0
                     ) -> np.ndarray:
    """Tomogram `[z, y, x]` (float32) by IMOD from a tilt series `[tilt, y, x]`; binned by
    `newstack` first when `bin_factor` ≠ 1 (`thickness` is in binned voxels)."""
    require_imod()
    with tempfile.TemporaryDirectory(prefix="templearn-imod-") as tmp:
        work = Path(tmp)
        write_mrc(work / "ts.mrc", Volume(images.astype(np.float32), pixel_size))
        (work / "ts.tlt").write_text("".join(f"{a:.3f}\n" for a in angles_deg))
        stack = "ts.mrc"
        if bin_factor != 1:
            _run(newstack_command(stack, "ts_bin.mrc", bin_factor), work)
            stack = "ts_bin.mrc"
        _run(tilt_command(stack, "ts.tlt", "rec_full.mrc", thickness, radial), work)
        _run(trimvol_command("rec_full.mrc", "rec.mrc"), work)
        return read_mrc(work / "rec.mrc").data.astype(np.float32)
