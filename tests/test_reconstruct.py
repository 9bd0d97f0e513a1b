"""Reconstruction: agreement with reference FBPs, handedness, SIRT, filters, binning, CLI.

Phantoms are Gaussian blobs whose sinograms are computed analytically (a blob of width σ
and amplitude a projects to a·√(2π)·σ·exp(-(u - u0)²/2σ²) at
u0 = cu + (x - cx)·cosθ + (z - cz)·sinθ), independently of `templearn.projector`.

Reference conventions, determined once against our geometry and encoded here:
- ASTRA 2D parallel beam: `create_vol_geom(nz, nx)` (rows = z from 0, columns = x),
  projection angles = -θ (radians), detector and image centres (n - 1)/2 as ours, so any
  size works; its `strip` projector is the closest discretisation to ours.
- scikit-image `iradon(sinogram.T, theta=-θ)`: rows = z, columns = x of a square image;
  its centre is n // 2, equal to our (n - 1)/2 only for odd n, so only odd sizes are
  compared (even sizes are half a pixel apart); it zeroes outside the inscribed circle.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from templearn.binning import fourier_resize, lanczos_resize
from templearn.errors import ExternalToolError, InputError
from templearn.mrc import read_mrc
from templearn.projector import TiltGeometry, backproject, project
from templearn.reconstruct import ReconstructParams, imod, reconstruct_tomogram
from templearn.reconstruct.radial import (
    RadialFilter,
    filter_projections,
    pad_lines,
    padded_length,
    radial_weights,
    view_weights,
)
from templearn.reconstruct.sirt import sirt
from templearn.reconstruct.wbp import weighted_backprojection
from templearn.tiltseries import TiltSeries, write_tilt_series
from tests.conftest import ncc

ANGLES = np.arange(-60.0, 61.0, 3.0)

Blob = tuple[float, float, float, float]  # x, z (voxels), sigma, amplitude


def blob_slice(blobs: list[Blob], nz: int, nx: int) -> np.ndarray:
    """The phantom sampled on the `[z, x]` voxel grid."""
    z, x = np.mgrid[:nz, :nx]
    out = np.zeros((nz, nx))
    for bx, bz, s, a in blobs:
        out += a * np.exp(-((x - bx) ** 2 + (z - bz) ** 2) / (2 * s * s))
    return out


def blob_sinogram(blobs: list[Blob], angles: np.ndarray, nz: int, nx: int) -> np.ndarray:
    """Analytic line integrals `[tilt, u]` (detector width nx) of the blobs."""
    theta = np.deg2rad(angles)[:, None]
    u = np.arange(nx)[None, :]
    out = np.zeros((len(angles), nx))
    for bx, bz, s, a in blobs:
        u0 = ((nx - 1) / 2 + (bx - (nx - 1) / 2) * np.cos(theta)
              + (bz - (nz - 1) / 2) * np.sin(theta))
        out += a * np.sqrt(2 * np.pi) * s * np.exp(-((u - u0) ** 2) / (2 * s * s))
    return out


def random_blobs(rng: np.random.Generator, nz: int, nx: int, n: int = 8) -> list[Blob]:
    return [(rng.uniform(0.25, 0.75) * nx, rng.uniform(0.25, 0.75) * nz, rng.uniform(1.5, 3),
             rng.uniform(0.3, 1.0)) for _ in range(n)]


def asymmetric_blobs(nz: int, nx: int) -> list[Blob]:
    """Three blobs whose Z-mirror images overlap none of them (mirror = flipped handedness)."""
    return [(0.25 * nx, 0.25 * nz, 2.0, 1.0), (0.5 * nx, 0.7 * nz, 2.5, 0.8),
            (0.75 * nx, 0.35 * nz, 1.5, 1.2)]


def series_of(slices: list[list[Blob]], angles: np.ndarray, nz: int, nx: int) -> np.ndarray:
    """Tilt series `[tilt, y, u]` with one blob phantom per Y row."""
    return np.stack([blob_sinogram(b, angles, nz, nx) for b in slices], axis=1).astype(np.float32)


# (a) agreement with reference FBP implementations ------------------------------------------

@pytest.mark.parametrize(("nz", "nx"), [(32, 64), (33, 65), (48, 96)])
def test_wbp_matches_astra_fbp(nz, nx, rng):
    astra = pytest.importorskip("astra", reason="astra-toolbox (dev extra) not installed")
    slices = [random_blobs(rng, nz, nx) for _ in range(3)]
    tilt_series = series_of(slices, ANGLES, nz, nx)
    ours = weighted_backprojection(tilt_series, ANGLES, nz)
    vol_geom = astra.create_vol_geom(nz, nx)
    proj_geom = astra.create_proj_geom("parallel", 1.0, nx, -np.deg2rad(ANGLES))
    projector = astra.create_projector("strip", proj_geom, vol_geom)
    for y in range(len(slices)):
        sino_id = astra.data2d.create("-sino", proj_geom, tilt_series[:, y, :])
        rec_id = astra.data2d.create("-vol", vol_geom)
        cfg = astra.astra_dict("FBP")
        cfg.update(ProjectorId=projector, ProjectionDataId=sino_id, ReconstructionDataId=rec_id)
        algorithm = astra.algorithm.create(cfg)
        astra.algorithm.run(algorithm)
        reference = astra.data2d.get(rec_id)
        astra.algorithm.delete(algorithm)
        astra.data2d.delete([sino_id, rec_id])
        assert ncc(ours[:, y, :], reference) >= 0.999
    astra.projector.delete(projector)


@pytest.mark.parametrize(("nz", "nx"), [(33, 65), (65, 129)])
def test_wbp_matches_skimage_iradon(nz, nx, rng):
    transform = pytest.importorskip("skimage.transform",
                                    reason="scikit-image (dev extra) not installed")
    slices = [random_blobs(rng, nz, nx) for _ in range(2)]
    tilt_series = series_of(slices, ANGLES, nz, nx)
    ours = weighted_backprojection(tilt_series, ANGLES, nz)
    z, x = np.mgrid[:nz, :nx]
    inside = (x - (nx - 1) / 2) ** 2 + (z - (nz - 1) / 2) ** 2 < (nx / 2 - 2) ** 2
    top = (nx - nz) // 2
    for y in range(len(slices)):
        square = transform.iradon(tilt_series[:, y, :].T.astype(np.float64), theta=-ANGLES,
                                  output_size=nx, filter_name="ramp", circle=True)
        reference = square[top:top + nz]
        assert ncc(ours[:, y, :][inside], reference[inside]) >= 0.999


def test_wbp_of_full_range_returns_volume_values():
    nz = nx = 48
    blobs = [(20.0, 25.0, 3.0, 1.0)]
    angles = np.arange(-90.0, 90.0, 1.0)
    tilt_series = blob_sinogram(blobs, angles, nz, nx)[:, None, :].astype(np.float32)
    recon = weighted_backprojection(tilt_series, angles, nz)[:, 0, :]
    phantom = blob_slice(blobs, nz, nx)
    assert np.abs(recon - phantom).max() < 0.03  # peak 1.0
    assert np.unravel_index(recon.argmax(), recon.shape) == (25, 20)


def test_large_offsets_reconstruct_flat_to_the_corners():
    # rays of corner voxels leave the detector at high tilt; they read the padded line
    views = 5e6 * np.exp(-0.1 / np.cos(np.deg2rad(ANGLES)))
    images = np.ones((len(ANGLES), 4, 40), np.float32) * views[:, None, None].astype(np.float32)
    recon = weighted_backprojection(images, ANGLES, 24)
    assert recon.std() < 1e-5 * recon.mean()


# (b) handedness ---------------------------------------------------------------------------

@pytest.mark.parametrize(("nz", "nx"), [(32, 64), (33, 65)])
def test_handedness_matches_analytic_geometry(nz, nx):
    blobs = asymmetric_blobs(nz, nx)
    phantom = blob_slice(blobs, nz, nx)
    tilt_series = series_of([blobs], ANGLES, nz, nx)
    recon = weighted_backprojection(tilt_series, ANGLES, nz)[:, 0, :]
    right, mirrored = ncc(recon, phantom), ncc(recon, phantom[::-1])
    assert right >= 0.8 and mirrored <= 0.3, (right, mirrored)
    # the shared projector agrees with the analytic sinogram, so the simulator does too
    geometry = TiltGeometry(tuple(ANGLES), nz, nx, nx)
    projected = project(phantom[:, None, :].astype(np.float32), geometry)[:, 0, :]
    assert ncc(projected, tilt_series[:, 0, :]) >= 0.999


# (c) adjoint ------------------------------------------------------------------------------

def test_backproject_is_adjoint_of_project(rng):
    geometry = TiltGeometry((-57.0, -20.5, 0.0, 3.3, 44.0, 60.0), 11, 16, 19)
    volume = rng.normal(size=(11, 5, 16)).astype(np.float32)
    data = rng.normal(size=(6, 5, 19)).astype(np.float32)
    lhs = float(np.vdot(project(volume, geometry).astype(np.float64), data))
    rhs = float(np.vdot(volume.astype(np.float64), backproject(data, geometry)))
    assert lhs == pytest.approx(rhs, rel=1e-5)


# (d) radial filter ------------------------------------------------------------------------

def test_ramp_zero_frequency_and_gaussian_falloff():
    npad = 200
    ramp = radial_weights(npad)
    assert ramp[0] == pytest.approx(0.2 * ramp[1])
    assert ramp[1:] == pytest.approx(np.arange(1, 101) / npad)
    soft = radial_weights(npad, RadialFilter(0.25, 0.05))  # cutoff bin 50, σ 10 bins
    assert soft[:51] == pytest.approx(ramp[:51])
    assert soft[60] == pytest.approx(ramp[50] * np.exp(-0.5))
    in_pixels = radial_weights(npad, RadialFilter(50, 10))  # > 1: Fourier pixels
    assert in_pixels == pytest.approx(soft)


def test_fake_sirt_filter_plateaus_then_approaches_ramp():
    npad = 200
    ramp = radial_weights(npad)
    a = 0.65 / npad
    k5 = radial_weights(npad, RadialFilter(fake_sirt_iterations=5))
    assert k5[1] == pytest.approx(ramp[1], rel=0.01)  # ramp at low frequency
    assert k5[-1] == pytest.approx(5 * a, rel=0.03)  # plateau k·a at high frequency
    assert np.all(np.diff(k5) >= 0)
    errors = [np.abs(radial_weights(npad, RadialFilter(fake_sirt_iterations=k)) - ramp).max()
              for k in (5, 20, 100, 2000)]
    assert np.all(np.diff(errors) < 0) and errors[-1] < 1e-4 * ramp.max()


def test_padding_and_density_weighting():
    line = np.array([[1.0, 1.0, 1.0, 5.0, 4.0, 4.0, 4.0]], dtype=np.float32)
    padded = pad_lines(line, 12)
    assert padded[0, :7] == pytest.approx(line[0])
    steps = np.diff(np.r_[padded[0, 6:], padded[0, 0]])  # 4 ... 1, evenly
    assert steps == pytest.approx(np.full(6, -0.5))
    assert padded_length(64) >= 64 + 16 and 1000 + 50 <= padded_length(1000) < 1100
    assert view_weights(np.array([10.0, -10.0, 0.0])) == pytest.approx(np.deg2rad([10] * 3))
    assert view_weights(np.array([0.0, 2.0, 6.0])) == pytest.approx(np.deg2rad([2, 3, 4]))
    flat = filter_projections(np.ones((3, 2, 40), np.float32), np.array([-2.0, 0.0, 2.0]))
    assert np.allclose(flat, flat[0, 0, 0])  # a flat line keeps only the DC weight


# (e) SIRT ---------------------------------------------------------------------------------

def test_sirt_reduces_residual_and_finds_phantom():
    nz, nx = 32, 64
    blobs = asymmetric_blobs(nz, nx)
    phantom = blob_slice(blobs, nz, nx)
    tilt_series = series_of([blobs], ANGLES, nz, nx)
    residuals: list[float] = []
    recon = sirt(tilt_series, ANGLES, nz, 20, residuals)[:, 0, :]
    assert np.all(np.diff(residuals) < 0) and residuals[-1] < 0.15 * residuals[0]
    right, mirrored = ncc(recon, phantom), ncc(recon, phantom[::-1])
    assert right >= 0.8 and mirrored <= 0.3, (right, mirrored)
    fake = weighted_backprojection(tilt_series, ANGLES, nz, RadialFilter(0.5, 0.5, 20))
    assert ncc(fake[:, 0, :], recon) >= 0.97


# (f) binning ------------------------------------------------------------------------------

@pytest.mark.parametrize("resize", [lanczos_resize, fourier_resize])
@pytest.mark.parametrize(("n", "m"), [(64, 32), (63, 21), (60, 16)])
def test_binning_keeps_centre_and_mean(resize, n, m):
    y, x = np.mgrid[:n, :n]
    c = (n - 1) / 2
    image = (np.exp(-((x - c) ** 2 + (y - c) ** 2) / (2 * 6.0**2)) + 0.1).astype(np.float32)
    out = resize(np.stack([image, 2 * image]), (m, m))
    assert out.shape == (2, m, m)
    yy, xx = np.mgrid[:m, :m]
    blob = out[0] - 0.1
    assert (blob * xx).sum() / blob.sum() == pytest.approx((m - 1) / 2, abs=1e-3)
    assert (blob * yy).sum() / blob.sum() == pytest.approx((m - 1) / 2, abs=1e-3)
    assert out[0].mean() == pytest.approx(image.mean(), rel=2e-3)
    assert out[1] == pytest.approx(2 * out[0], rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("m", [32, 31, 97, 128, 45])
def test_fourier_resize_resamples_an_off_centre_blob_exactly(m):
    """A smooth (band-limited) blob off the centre, resampled to any size, equals the blob
    drawn directly on the new grid (centres aligned): no shift, no loss."""
    def blob(n: int, pixel: float) -> np.ndarray:
        x = (np.arange(n) - (n - 1) / 2) * pixel
        return np.exp(-((x[:, None] - 28.0) ** 2 + (x[None, :] + 20.0) ** 2) / (2 * 20.0**2))

    np.testing.assert_allclose(fourier_resize(blob(64, 4.0), (m, m)), blob(m, 256.0 / m),
                               atol=1e-5)


def test_lanczos_flat_image_stays_flat():
    assert np.allclose(lanczos_resize(np.full((30, 45), 3.0), (10, 15)), 3.0, atol=1e-5)


# (g) the entry point and the CLI -----------------------------------------------------------

def small_series(pixel: float = 5.0, meta: bool = True) -> TiltSeries:
    nz, ny, nx = 12, 16, 32
    slices = [asymmetric_blobs(nz, nx)] * ny
    info = {"sample": {"centre_angst": [100.0, 200.0, 50.0], "thickness_angst": nz * pixel}}
    return TiltSeries(series_of(slices, ANGLES, nz, nx), ANGLES, pixel, info if meta else {})


def test_reconstruct_tomogram_geometry():
    tomogram = reconstruct_tomogram(small_series(), ReconstructParams(bin_factor=2))
    assert tomogram.data.shape == (6, 8, 16) and tomogram.data.dtype == np.float32
    assert tomogram.voxel_size == pytest.approx(10.0)
    expected = np.array([100.0, 200.0, 50.0]) - (np.array([16, 8, 6]) - 1) / 2 * 10.0
    assert tomogram.origin == pytest.approx(tuple(expected))
    lanczos = reconstruct_tomogram(small_series(), ReconstructParams(bin_factor=2,
                                                                      antialias="lanczos"))
    assert ncc(lanczos.data, tomogram.data) > 0.95
    sized = reconstruct_tomogram(small_series(), ReconstructParams(pixel_size=10.0, thickness=9))
    assert sized.data.shape == (9, 8, 16)


@pytest.mark.parametrize(("params", "needle"), [
    (ReconstructParams(bin_factor=0), "--bin"),
    (ReconstructParams(thickness=0), "--thickness"),
    (ReconstructParams(method="art"), "--method"),
    (ReconstructParams(backend="imod", method="sirt"), "sirt"),
    (ReconstructParams(pixel_size=2.0), "cannot make pixels smaller"),
])
def test_reconstruct_rejects_bad_parameters(params, needle):
    with pytest.raises(InputError, match=needle):
        reconstruct_tomogram(small_series(), params)


def test_thickness_required_without_meta():
    with pytest.raises(InputError, match="--thickness is required"):
        reconstruct_tomogram(small_series(meta=False))
    tomogram = reconstruct_tomogram(small_series(meta=False), ReconstructParams(thickness=7))
    assert tomogram.data.shape == (7, 16, 32) and tomogram.origin == (0.0, 0.0, 0.0)


def templearn(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from templearn.cli import main; main()", *args],
                          capture_output=True, text=True)


def test_cli_end_to_end(tmp_path):
    stack = write_tilt_series(tmp_path / "sim", small_series())
    out = tmp_path / "rec"
    run = templearn("reconstruct", str(stack), "-o", str(out), "--bin", "2")
    assert run.returncode == 0, run.stderr
    tomogram = read_mrc(out / "tomogram.mrc")
    assert tomogram.data.shape == (6, 8, 16) and tomogram.voxel_size == pytest.approx(10.0)
    assert tomogram.origin == pytest.approx((25.0, 165.0, 25.0))
    assert (out / "versions.yml").exists() and (out / "reconstruct.params.yml").exists()
    run = templearn("reconstruct", str(stack), "-o", str(tmp_path / "sirt"), "--method", "sirt",
                    "--iterations", "3")
    assert run.returncode == 0, run.stderr
    assert read_mrc(tmp_path / "sirt" / "tomogram.mrc").data.shape == (12, 16, 32)


@pytest.mark.parametrize(("args", "needle"), [
    (["--angles", "wrong.tlt"], "angles"),
    (["--bin", "-1"], "--bin"),
    (["--thickness", "0"], "--thickness"),
    (["--radial", "0.5"], "--radial"),
])
def test_cli_bad_input_exits_2_without_output(tmp_path, args, needle):
    stack = write_tilt_series(tmp_path / "sim", small_series())
    (tmp_path / "wrong.tlt").write_text("-3\n0\n3\n")
    args = [a if a != "wrong.tlt" else str(tmp_path / a) for a in args]
    out = tmp_path / "rec"
    run = templearn("reconstruct", str(stack), "-o", str(out), *args)
    assert run.returncode == 2, run.stderr
    errors = [line for line in run.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("templearn: error: ") and needle in errors[0]
    assert "Traceback" not in run.stderr and not out.exists()


def test_cli_not_an_mrc_exits_2(tmp_path):
    bad = tmp_path / "ts.mrc"
    bad.write_text("not an mrc")
    (tmp_path / "ts.tlt").write_text("0\n")
    run = templearn("reconstruct", str(bad), "-o", str(tmp_path / "rec"), "--thickness", "4")
    assert run.returncode == 2 and "ts.mrc" in run.stderr and "Traceback" not in run.stderr


# the IMOD backend ---------------------------------------------------------------------------

def test_imod_commands():
    radial = RadialFilter(0.35, 0.05, 10)
    assert imod.newstack_command("a.mrc", "b.mrc", 4) == [
        "newstack", "-input", "a.mrc", "-output", "b.mrc", "-bin", "4", "-antialias", "6"]
    assert imod.tilt_command("b.mrc", "a.tlt", "r.mrc", 300, radial) == [
        "tilt", "-InputProjections", "b.mrc", "-OutputFile", "r.mrc", "-TILTFILE", "a.tlt",
        "-THICKNESS", "300", "-RADIAL", "0.35,0.05", "-FalloffIsTrueSigma", "1", "-MODE", "2",
        "-PERPENDICULAR", "-AdjustOrigin", "-FakeSIRTiterations", "10"]
    assert imod.trimvol_command("r.mrc", "t.mrc") == ["trimvol", "-rx", "r.mrc", "t.mrc"]


def test_imod_backend_missing_is_an_input_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InputError, match="IMOD"):
        reconstruct_tomogram(small_series(), ReconstructParams(backend="imod"))


def fake_imod(directory: Path, ran_in: Path) -> None:
    """newstack and trimvol that succeed, and a `tilt` that records where it ran and fails."""
    directory.mkdir()
    scripts = {"newstack": "exit 0\n", "trimvol": "exit 0\n",
               "tilt": f"pwd > '{ran_in}'\necho 'ERROR: TILT - cannot allocate' >&2\nexit 1\n"}
    for name, body in scripts.items():
        (directory / name).write_text("#!/bin/sh\n" + body)
        (directory / name).chmod(0o755)


def test_imod_failure_is_an_external_tool_error_naming_its_log(monkeypatch, tmp_path):
    fake_imod(tmp_path / "bin", tmp_path / "ran_in.txt")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    with pytest.raises(ExternalToolError, match=r"IMOD tilt failed.*cannot allocate") as error:
        reconstruct_tomogram(small_series(), ReconstructParams(backend="imod"))
    log = Path(error.value.log)
    try:
        assert "\n" not in str(error.value) and "-InputProjections" in log.read_text()
    finally:
        log.unlink()
    ran_in = Path((tmp_path / "ran_in.txt").read_text().strip())
    assert ran_in != here and not ran_in.exists() and list(here.iterdir()) == []


@pytest.mark.skipif(shutil.which("tilt") is None, reason="IMOD (tilt) not on PATH")
def test_imod_backend_agrees_with_builtin(tmp_path):
    series = small_series()
    builtin = reconstruct_tomogram(series, ReconstructParams())
    by_imod = reconstruct_tomogram(series, ReconstructParams(backend="imod"))
    assert by_imod.data.shape == builtin.data.shape
    assert ncc(by_imod.data, builtin.data) > 0.95
