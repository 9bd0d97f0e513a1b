"""Template matching: a planted, rotated chiral template in noise is found at its voxel and
orientation; the wedge weighting and the mirror image behave; the rotation sampling covers
SO(3); the stage writes its files and rejects bad input with exit 2."""

import json

import numpy as np
import pytest
import typer
from scipy import ndimage
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from templearn import star
from templearn.cli.build import make_command
from templearn.geometry import relion_to_matrix, xyz_to_zyx
from templearn.match import (
    Search,
    extract_picks,
    run_search,
    sample_rotations,
    template_radius,
    wedge_weight,
)
from templearn.mrc import Volume, read_mrc, write_mrc
from templearn.stages import match as match_stage
from tests.test_stage_picking import main

STEP = 30.0  # degrees: 552 rotations, quick on a 32³ tomogram
TOMO_SHAPE = (32, 32, 32)
CENTRE = np.array([13, 17, 15])  # z, y, x of the planted particle
TRUE = Rotation.from_euler("ZYZ", [40.0, 70.0, -25.0], degrees=True).as_matrix()


def chiral_template(n: int = 12) -> np.ndarray:
    """Five Gaussian blobs of shrinking size along a right-handed helix about x."""
    grid = np.stack(np.meshgrid(*[np.arange(n) - (n - 1) / 2] * 3, indexing="ij"), axis=-1)
    turn = np.radians(80.0 * np.arange(5))
    centres = np.stack([3 * np.cos(turn), 3 * np.sin(turn), 1.5 * np.arange(5) - 3], axis=1)
    return sum(np.exp(-((grid - c) ** 2).sum(-1) / (2 * s * s))
               for c, s in zip(centres, np.linspace(1.3, 0.9, 5), strict=True))


def rotated(template: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The template turned by `matrix` (x y z) about its centre (scipy, independent of JAX)."""
    m = xyz_to_zyx(matrix).T
    centre = (np.array(template.shape) - 1) / 2
    return ndimage.affine_transform(template, m, offset=centre - m @ centre, order=3)


def plant(template: np.ndarray, matrix: np.ndarray, noise: float, seed: int = 0,
          tilt_range: tuple[float, float] | None = None) -> np.ndarray:
    """A tomogram: the turned template (even box: centre between voxels, put on CENTRE),
    optionally wedge-filtered, plus Gaussian noise."""
    volume = np.zeros(TOMO_SHAPE)
    turned = rotated(template, matrix)
    n = template.shape[0]
    corner = CENTRE - n // 2
    volume[tuple(slice(c, c + n) for c in corner)] = turned
    volume = ndimage.shift(volume, 0.5, order=3)  # centre (n-1)/2 onto CENTRE
    if tilt_range is not None:
        volume = np.fft.irfftn(np.fft.rfftn(volume) * wedge_weight(TOMO_SHAPE, tilt_range),
                               TOMO_SHAPE, axes=(0, 1, 2))
    return volume + np.random.default_rng(seed).normal(0, noise, TOMO_SHAPE)


def angle_between(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(Rotation.from_matrix(a.T @ b).magnitude()))


@pytest.fixture(scope="module")
def rotations():
    return sample_rotations(STEP)


def test_planted_template_is_found_at_its_voxel_and_orientation(rotations):
    template = chiral_template()
    scores, index = run_search(plant(template, TRUE, noise=0.3), template, Search(rotations))
    peak = np.unravel_index(scores.argmax(), scores.shape)
    assert np.array_equal(peak, CENTRE)
    assert scores.max() > 0.3
    assert angle_between(rotations[index[peak]], TRUE) < STEP
    picks = extract_picks(scores, index, rotations, 5.0, threshold=None, n_picks=1,
                          name="blob", tomo_name="t")
    assert picks[list(star.COORDINATES)].to_numpy()[0].tolist() == CENTRE[::-1].tolist()
    angles = picks[list(star.ANGLES)].to_numpy()[0]
    assert angle_between(relion_to_matrix(angles), rotations[index[peak]]) < 1e-3


def test_wedge_weighting_raises_the_score_of_a_wedged_particle(rotations):
    template, wedge = chiral_template(), (-45.0, 60.0)
    tomogram = plant(template, rotations[123], noise=0.2, tilt_range=wedge)
    plain, _ = run_search(tomogram, template, Search(rotations))
    weighted, _ = run_search(tomogram, template, Search(rotations, tilt_range=wedge))
    z, y, x = CENTRE
    assert weighted[z, y, x] > plain[z, y, x] + 0.03


def test_mirror_image_scores_lower(rotations):
    template = chiral_template()
    tomogram = plant(template, rotations[123], noise=0.2)  # a sampled orientation
    true, _ = run_search(tomogram, template, Search(rotations))
    mirror, _ = run_search(tomogram, template[..., ::-1].copy(), Search(rotations))
    z, y, x = CENTRE
    assert mirror.max() < true[z, y, x] - 0.1


@pytest.mark.parametrize(("step", "symmetry"), [(30.0, 1), (20.0, 1), (20.0, 3)])
def test_rotations_cover_so3(step, symmetry):
    """Every random rotation (up to the Cn spin about z) lies within `step` of a sample."""
    found = Rotation.from_matrix(sample_rotations(step, symmetry))
    quats = np.concatenate([(found * Rotation.from_euler("z", 360.0 / symmetry * k,
                                                         degrees=True)).as_quat()
                            for k in range(symmetry)])
    tree = cKDTree(np.concatenate([quats, -quats]))
    chord, _ = tree.query(Rotation.random(5000, random_state=1).as_quat())
    assert np.degrees(4 * np.arcsin(chord / 2)).max() < step
    assert len(found) == pytest.approx(len(sample_rotations(step)) / symmetry, rel=0.1)


def test_template_radius_is_the_same_for_the_negated_map():
    template = chiral_template(16)
    radius = template_radius(template)
    assert 4.0 < radius < 8.0  # the helix (radius 3, length 6) and its blobs, plus one voxel
    assert template_radius(-template) == pytest.approx(radius)


def test_seven_degrees_is_about_the_papers_count():
    assert 40_000 < len(sample_rotations(7.0)) < 50_000


# --- the stage ---------------------------------------------------------------------------

def run_cli(*args: str):
    app = typer.Typer()
    app.command()(make_command(match_stage.STAGE))
    return CliRunner().invoke(app, list(args))


@pytest.fixture()
def files(tmp_path):
    template = chiral_template()
    # dark particle, as in tomograms: the stage negates the (bright) map by default
    write_mrc(tmp_path / "tomo.mrc", Volume(-plant(template, TRUE, 0.3).astype(np.float32), 10.0))
    write_mrc(tmp_path / "template.mrc", Volume(template.astype(np.float32), 10.0))
    return tmp_path


def test_stage_writes_scores_angles_and_picks(files):
    (files / "meta.json").write_text(json.dumps({"angles_nominal": [-50.0, 0.0, 55.0]}))
    result = run_cli(str(files / "tomo.mrc"), str(files / "template.mrc"), "--angular-step",
                     "30", "--meta", str(files / "meta.json"), "--n-picks", "3", "-o",
                     str(files / "out"))
    assert result.exit_code == 0, result.output
    out = files / "out"
    scores = read_mrc(out / match_stage.SCORES)
    assert scores.voxel_size == pytest.approx(10.0)
    index = read_mrc(out / match_stage.ANGLES).data
    table = np.loadtxt(out / match_stage.ANGLES_TABLE, skiprows=1)
    assert len(table) == 552 and index.max() < 552
    picks = star.read_star(out / match_stage.PICKS)
    assert len(picks) == 3
    assert picks[list(star.COORDINATES)].to_numpy()[0].tolist() == CENTRE[::-1].tolist()
    first = int(index[tuple(CENTRE)])
    assert np.allclose(picks[list(star.ANGLES)].to_numpy()[0], table[first, 1:], atol=1e-3)


def test_stage_default_threshold_is_automatic(files):
    result = run_cli(str(files / "tomo.mrc"), str(files / "template.mrc"), "--angular-step",
                     "30", "-o", str(files / "out"))
    assert result.exit_code == 0, result.output
    picks = star.read_star(files / "out" / match_stage.PICKS)
    scores = read_mrc(files / "out" / match_stage.SCORES).data
    assert 1 <= len(picks) < 20
    assert picks[list(star.COORDINATES)].to_numpy()[0].tolist() == CENTRE[::-1].tolist()
    assert picks[star.SCORE].min() > np.median(scores)
    recorded = (files / "out" / "match.params.yml").read_text()
    assert "auto_threshold: mixture" in recorded and "false_alarms: 1.0" in recorded


@pytest.mark.parametrize(("change", "message"), [
    ({"voxel": 12.0}, "voxel size"),
    ({"args": ["--tilt-range", "60,-60"]}, "--tilt-range"),
    ({"args": ["--symmetry", "D2"]}, "--symmetry"),
    ({"big": True}, "does not fit"),
])
def test_bad_input_exits_2_with_one_line(files, change, message, capsys):
    if "voxel" in change:
        write_mrc(files / "template.mrc", Volume(chiral_template().astype(np.float32),
                                                 change["voxel"]))
    if "big" in change:
        write_mrc(files / "template.mrc", Volume(np.ones((40, 40, 40), np.float32), 10.0))
    status, err = main("match", str(files / "tomo.mrc"), str(files / "template.mrc"),
                       *change.get("args", []), "-o", str(files / "out"), capsys=capsys)
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1 and message in err
    assert not (files / "out").exists()
