"""`templearn report`: the HTML run report, built from a small synthetic run directory (files
written directly, no stage is run)."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from templearn import star
from templearn.errors import InputError
from templearn.evaluate import evaluate_picks
from templearn.mrc import Volume, write_mrc
from templearn.provenance import write_provenance
from templearn.report.html import build_report
from templearn.report.plots import plot_pr_curves, plot_training_curves, write_slices_png
from templearn.report.run import RunIndex, short_labels
from templearn.sample import CLASS_NAME

SHAPE = (16, 40, 48)  # z, y, x
VOXEL = 10.0
IMG = re.compile(r'<img src="data:image/png;base64,([^"]*)"')


def record(out: Path, stage: str, inputs: dict, params: dict | None = None,
           result: str = "ok") -> Path:
    out.mkdir(parents=True, exist_ok=True)
    write_provenance(out, stage, params or {}, inputs, "f" * 64, ("numpy",), result=result)
    return out


def particles(rng: np.random.Generator, n: int, tomo: str) -> pd.DataFrame:
    xyz = rng.uniform([4, 4, 2], [SHAPE[2] - 4, SHAPE[1] - 4, SHAPE[0] - 2], (n, 3))
    return pd.DataFrame({star.TOMO_NAME: tomo, star.COORDINATES[0]: xyz[:, 0],
                         star.COORDINATES[1]: xyz[:, 1], star.COORDINATES[2]: xyz[:, 2],
                         CLASS_NAME: "ribosome", star.CLASS_ID: 1})


def tomogram_chain(run: Path, name: str, rng: np.random.Generator, absolute: bool,
                   n_picks: int) -> dict:
    """sample → tilt series → tomogram → labels → segment → picks → evaluation of one
    tomogram; the metrics it evaluated to."""
    def ref(path: Path) -> str:
        return str(path) if absolute else path.relative_to(run).as_posix()

    base = run / "tomograms" / name
    sample = record(base / "sample", "tetris", {"maps": [ref(run / "structures/maps")]},
                    result="40 molecules")
    density = rng.random(SHAPE).astype(np.float32)
    instances = np.zeros(SHAPE, np.int16)
    instances[4:10, 10:20, 10:20] = 1
    write_slices_png(sample / "slices.png", density, instances)
    star.write_star(sample / "molecules.star", {star.PARTICLES_BLOCK: pd.DataFrame({
        star.MOLECULE_NAME: ["rib", "rib", "apo"], star.MOLECULE_CLASS: [
            "template", "template", "distractor"], CLASS_NAME: ["ribosome", "ribosome", "apo"]})})

    tilt = record(base / "tilt", "simulate", {"sample": ref(sample)}, result="5 images")
    angles = np.array([-60.0, -30.0, 0.0, 30.0, 60.0])
    stack = rng.normal(size=(5, SHAPE[1], SHAPE[2])).astype(np.float32)
    stack[2, 5:15, 5:30] += 4.0  # the 0° image differs from the others
    write_mrc(tilt / "tiltseries.mrc", Volume(stack, VOXEL))
    (tilt / "tiltseries.tlt").write_text("".join(f"{a}\n" for a in angles))

    tomo = record(base / "tomo", "reconstruct",
                  {"tilt_series": ref(tilt / "tiltseries.mrc")}, result="WBP")
    write_mrc(tomo / "tomogram.mrc", Volume(rng.normal(size=SHAPE).astype(np.float32), VOXEL))

    truth = particles(rng, 12, name)
    labels = record(base / "labels", "labels", {"molecules": ref(sample / "molecules.star"),
                                                "like": ref(tomo / "tomogram.mrc")})
    label_map = np.zeros(SHAPE, np.uint8)
    for x, y, z in truth[list(star.COORDINATES)].to_numpy():
        label_map[max(int(z) - 1, 0):int(z) + 2, int(y) - 2:int(y) + 3, int(x) - 2:int(x) + 3] = 1
    write_mrc(labels / "labels.mrc", Volume(label_map, VOXEL))
    star.write_star(labels / "targets.star", {
        star.GENERAL_BLOCK: star.general_table(SHAPE, VOXEL), star.PARTICLES_BLOCK: truth})

    picking = run / "picking" / name
    segment = record(picking / "segment", "segment", {
        "tomogram": ref(tomo / "tomogram.mrc"), "model": ref(run / "training/model")})
    write_mrc(segment / "scores_ribosome.mrc", Volume(label_map.astype(np.float32) * 0.9, VOXEL))
    write_mrc(segment / "labels.mrc", Volume(label_map, VOXEL))
    (segment / "classes.json").write_text(json.dumps({"0": "background", "1": "ribosome"}))

    picks_dir = record(picking / "picks", "pick", {"labels": ref(segment / "labels.mrc")})
    picks = truth.iloc[:n_picks].copy()
    picks[star.COORDINATES[0]] += 1.0
    picks = pd.concat([picks, particles(rng, 3, name)], ignore_index=True)  # 3 false picks
    picks[star.CLUSTER_SIZE] = np.arange(len(picks), 0, -1)
    star.write_star(picks_dir / "picks.star", {
        star.GENERAL_BLOCK: star.general_table(SHAPE, VOXEL), star.PARTICLES_BLOCK: picks})

    evaluation = record(picking / "evaluation", "evaluate", {
        "picks": ref(picks_dir / "picks.star"), "targets": ref(labels / "targets.star")})
    metrics = evaluate_picks(picks, truth, distance=3.0)
    (evaluation / "metrics.json").write_text(json.dumps(metrics))
    plot_pr_curves(metrics, evaluation / "pr_curve.png")
    return metrics


def make_run(run: Path, absolute: bool = False) -> dict[str, dict]:
    """A small run directory with every kind of stage output; metrics per test tomogram."""
    rng = np.random.default_rng(7)
    run.mkdir(parents=True)
    (run / "run.yaml").write_text("name: tiny\nstructures:\n  ribosome: rib.pdb\n")
    (run / "logs").mkdir()
    (run / "logs" / "train.log").write_text("epoch 1\nTraceback: out of memory\n")
    tasks = [{"name": "structures/nma", "stage": "nma", "command": ["templearn", "nma"],
              "out": "structures/nma", "status": "done", "seconds": 3.2, "log": "logs/nma.log"},
             {"name": "training", "stage": "train", "command": ["templearn", "train", "x"],
              "out": "training", "status": "failed", "seconds": 1.5, "log": "logs/train.log"},
             {"name": "picking/test2/segment", "stage": "segment", "command": [], "out": "x",
              "status": "not run", "seconds": 0.0, "log": "logs/picking__test2.log"}]
    (run / "tasks.json").write_text(json.dumps(tasks))

    nma = record(run / "structures/nma", "nma", {"structure": "rib.pdb"}, result="20 modes")
    (nma / "modes.npz").write_bytes(b"")
    conformers = record(run / "structures/conformers", "deform",
                        {"structure": "rib.pdb", "modes": "structures/nma/modes.npz"})
    pd.DataFrame({"file": [f"rib_conf{i:03d}.pdb" for i in range(8)],
                  "rmsd_angstrom": rng.uniform(1, 3, 8), "amplitude_mode1": rng.normal(
                      size=8)}).to_csv(conformers / "rmsd.csv", index=False)
    maps = record(run / "structures/maps", "density",
                  {"structures": ["structures/conformers/rib_conf000.pdb"]})
    box = np.zeros((12, 12, 12), np.float32)
    box[3:9, 4:8, 2:10] = 1.0
    write_mrc(maps / "rib_conf000.mrc", Volume(box, VOXEL))
    star.write_star(maps / "maps.star", {star.MAPS_BLOCK: pd.DataFrame({
        star.MOLECULE_NAME: ["rib_conf000"], star.MAP_FILE: ["rib_conf000.mrc"],
        star.STRUCTURE_FILE: ["/x/rib_conf000.pdb"], star.MASS_DA: [2.5e6]})})

    training = record(run / "training", "train", {}, result="2 epochs")
    rows = [{"epoch": 1, "train_loss": 0.9, "val_loss": 0.8, "val_f1_ribosome": 0.3},
            {"epoch": 2, "train_loss": 0.5, "val_loss": 0.6, "val_f1_ribosome": 0.6}]
    pd.DataFrame(rows).to_csv(training / "training_log.csv", index=False)
    plot_training_curves(training / "training_curves.png", rows, ["background", "ribosome"])
    (training / "model").mkdir()
    return {name: tomogram_chain(run, name, rng, absolute, n)
            for name, n in (("test0", 9), ("test1", 5))}


def images(text: str) -> list[bytes]:
    return [base64.b64decode(data, validate=True) for data in IMG.findall(text)]


def assert_pngs(text: str) -> None:
    from PIL import Image

    found = images(text)
    assert found
    assert len(found) == text.count("<img")
    for png in found:
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG"
            image.load()
            assert image.width > 50 and image.height > 50


@pytest.fixture(scope="module")
def run_report(tmp_path_factory) -> tuple[Path, dict, str]:
    run = tmp_path_factory.mktemp("report") / "run"
    metrics = make_run(run)
    path = build_report(run)
    assert path == run / "report.html"
    return run, metrics, path.read_text()


def test_report_sections_and_f1(run_report):
    _, metrics, text = run_report
    for anchor in ("run", "templates", "sample", "tilt", "labels", "training", "picking",
                   "evaluation"):
        assert f'<section id="{anchor}">' in text
    assert 'id="notes"' not in text, re.findall(r"<li>(.*?)</li>", text)
    for name, m in metrics.items():
        entry = m["classes"]["ribosome"]
        row = re.search(rf"<td>{name}</td><td>ribosome</td>(.*?)</tr>", text)
        assert row, name
        assert f"{entry['f1']:.3f}" in row.group(1)
        assert f"{entry['best_f1']:.3f}" in row.group(1)
        assert f"{entry['n_picks']} / {entry['n_true']}" in row.group(1)
        assert (f"{entry['f1_at_p_eq_r']:.3f}" if entry["f1_at_p_eq_r"] is not None
                else "n/a") in row.group(1)
    mean_f1 = np.mean([m["classes"]["ribosome"]["f1"] for m in metrics.values()])
    assert re.search(rf"<b>mean</b></td><td>ribosome</td><td class=num>{mean_f1:.3f}<", text)
    assert "name: tiny" in text  # run.yaml
    assert "Traceback: out of memory" in text  # the failed task's log
    assert '<span class="not-run">not run</span>' in text
    assert "<td>templearn</td>" in text  # versions
    assert "rib_conf007.pdb" in text  # the conformer table
    assert "structure: rib.pdb" in text  # the normal modes' input
    assert "tilt +0.0°" in text


def test_report_is_self_contained(run_report):
    _, _, text = run_report
    assert_pngs(text)
    assert "<script" not in text.lower() and "<link" not in text.lower()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
    # sample slices, map projections, RMSD, tilt, 2 label overlays, training, 2 pick figures,
    # the PR overview and 2 per-tomogram PR curves
    assert len(images(text)) == 12


def test_moved_run_with_absolute_paths(tmp_path):
    make_run(tmp_path / "before", absolute=True)
    shutil.move(tmp_path / "before", tmp_path / "after")
    text = build_report(tmp_path / "after", tmp_path / "out" / "r.html").read_text()
    assert 'id="notes"' not in text, re.findall(r"<li>(.*?)</li>", text)
    assert text.count("crosses: true particles") == 2
    assert '<a href="../after/logs/train.log">' in text
    assert_pngs(text)


def test_partial_run(tmp_path):
    run = tmp_path / "run"
    make_run(run)
    shutil.rmtree(run / "training")
    shutil.rmtree(run / "picking" / "test1")
    shutil.rmtree(run / "picking" / "test0" / "evaluation")
    (run / "tomograms" / "test0" / "tomo" / "tomogram.mrc").write_bytes(b"broken")
    text = build_report(run).read_text()
    assert 'id="training"' not in text and 'id="evaluation"' not in text
    assert 'id="notes"' in text and "not a readable MRC file" in text
    assert 'id="labels"' in text  # test1's labels are still drawn
    assert_pngs(text)


def test_index_links(run_report):
    index = RunIndex(run_report[0])
    evaluation = next(d for d in index.of_stage("evaluate") if "test1" in d.name)
    assert index.upstream(evaluation, "segment").name == "picking/test1/segment"
    assert index.upstream(evaluation, "simulate").name == "tomograms/test1/tilt"
    assert index.upstream(evaluation, "tetris").name == "tomograms/test1/sample"


def test_bad_input(tmp_path):
    with pytest.raises(InputError, match="no such directory"):
        build_report(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        build_report(tmp_path / "file")
    with pytest.raises(InputError, match="no stage records"):
        build_report(tmp_path)


def test_cli(run_report, tmp_path):
    from templearn.cli.report import command

    app = typer.Typer()
    app.command()(command)
    run = run_report[0]
    result = CliRunner().invoke(app, [str(run), "-o", str(tmp_path / "page.html")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "page.html").read_text().startswith("<!DOCTYPE html>")
    result = CliRunner().invoke(app, [str(tmp_path / "missing")])
    assert isinstance(result.exception, InputError)


def test_short_labels():
    assert short_labels(["tomograms/test0/tomo", "tomograms/test1/tomo"]) == ["test0", "test1"]
    assert short_labels(["a/b", "a/b"]) == ["a/b", "a/b"]
    assert short_labels(["x"]) == ["x"]
    assert short_labels(["a/x/c", "a/c"]) == ["x/c", "c"]
    assert short_labels(["a/b", "a/b/c"]) == ["b", "b/c"]


def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp}", *args],
        capture_output=True, text=True, timeout=120, check=True)


def ink(path: Path) -> tuple[float, float]:
    """Shares of a screenshot's pixels that are not white and that are strongly coloured."""
    from PIL import Image

    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(int)
    return float((rgb.min(axis=1) < 230).mean()), float((np.ptp(rgb, axis=1) > 60).mean())


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="chromium not installed (apt-get install -y chromium)")
def test_renders_in_chromium(run_report, tmp_path):
    run, _, text = run_report
    page = run / "report.html"
    dom = chromium("--dump-dom", page.as_uri(), tmp=tmp_path / "profile-dom").stdout
    assert dom.count("<img") == 12
    assert all(f'id="{a}"' in dom for a in ("run", "labels", "picking", "evaluation"))

    # The same page with every image broken: what the screenshot gains with the real images
    # is what the browser decoded from them.
    broken = tmp_path / "broken.html"
    broken.write_text(IMG.sub('<img src="data:image/png;base64,AAAA"', text))
    stats = {}
    for name, html_file in (("report", page), ("broken", broken)):
        shot = tmp_path / f"{name}.png"
        chromium(f"--screenshot={shot}", "--window-size=1200,3000", html_file.as_uri(),
                 tmp=tmp_path / f"profile-{name}")
        stats[name] = ink(shot)
    (dark, colour), (dark_broken, colour_broken) = stats["report"], stats["broken"]
    assert dark > 0.1 and dark > 2 * dark_broken, stats
    assert colour > 0.005 and colour > 3 * colour_broken, stats


def test_every_map_has_its_box_beyond_the_projections_shown(tmp_path, monkeypatch):
    import templearn.report.templates as templates

    make_run(tmp_path / "run")
    monkeypatch.setattr(templates, "MAX_MAP_PROJECTIONS", 0)  # no map is drawn
    part = templates._maps(RunIndex(tmp_path / "run"))
    assert "12×12×12 @ " in part and "<img" not in part


def add_matching(run: Path, name: str, rng: np.random.Generator, n_found: int) -> dict:
    """Template matching's picks of one tomogram and their evaluation; the metrics."""
    picking = run / "picking" / name
    truth = star.read_star(run / "tomograms" / name / "labels" / "targets.star")
    match = record(picking / "match", "match", {
        "tomogram": f"tomograms/{name}/tomo/tomogram.mrc",
        "template": "structures/maps/rib_conf000.mrc"}, {"name": "ribosome"})
    picks = pd.concat([truth.iloc[:n_found], particles(rng, 6, name)], ignore_index=True)
    picks[star.SCORE] = np.linspace(0.9, 0.2, len(picks))
    star.write_star(match / "picks.star", {
        star.GENERAL_BLOCK: star.general_table(SHAPE, VOXEL), star.PARTICLES_BLOCK: picks})
    evaluation = record(picking / "match-evaluation", "evaluate", {
        "picks": f"picking/{name}/match/picks.star",
        "targets": f"tomograms/{name}/labels/targets.star"}, {"sweep": "score"})
    metrics = evaluate_picks(picks, truth, distance=3.0, sweep="score")
    (evaluation / "metrics.json").write_text(json.dumps(metrics))
    plot_pr_curves(metrics, evaluation / "pr_curve.png")
    return metrics


def test_template_matching_next_to_the_trained_picker(tmp_path):
    from templearn.pipeline.run import results_table

    run = tmp_path / "run"
    learned = make_run(run)
    rng = np.random.default_rng(3)
    matched = {name: add_matching(run, name, rng, n) for name, n in (("test0", 4),
                                                                      ("test1", 7))}
    text = build_report(run).read_text()
    assert 'id="notes"' not in text, re.findall(r"<li>(.*?)</li>", text)
    assert "trained picker (TL) and template matching (TM)" in text
    for name in learned:
        tl, tm = learned[name]["classes"]["ribosome"], matched[name]["classes"]["ribosome"]
        rows = re.findall(rf"<td>{name}</td><td>ribosome</td>(.*?)</tr>", text)
        assert len(rows) == 2  # the trained picker's table, and the comparison
        assert f"{tl['best_f1']:.3f}" in rows[0]  # the first table is the trained picker's
        cells = re.findall(r"<td class=num>(.*?)</td>", rows[1])
        assert cells[:6] == [f"{v:.3f}" for k in ("f1", "precision", "recall")
                             for v in (tl[k], tm[k])]
        assert cells[6:8] == [f"{tl['n_picks']} / {tl['n_true']}",
                              f"{tm['n_picks']} / {tm['n_true']}"]
    mean = re.findall(r"<b>mean</b></td><td>ribosome</td><td class=num>.*?</td>"
                      r"<td class=num>(.*?)<", text)[-1]  # the comparison's: TM's F1
    assert mean == f"{np.mean([m['classes']['ribosome']['f1'] for m in matched.values()]):.3f}"
    assert "<figcaption>test0 (TM)</figcaption>" in text
    assert_pngs(text)

    lines = results_table(run)
    assert len(lines) == 4
    tm = matched["test1"]["classes"]["ribosome"]
    assert lines[3] == (f"test1 ribosome: template matching (TM): {tm['n_picks']} picks, "
                        f"{tm['n_true']} true, precision {tm['precision']:.3f}, recall "
                        f"{tm['recall']:.3f}, F1 {tm['f1']:.3f} (all picks); F1 at P=R "
                        + ("n/a" if tm["f1_at_p_eq_r"] is None
                           else f"{tm['f1_at_p_eq_r']:.3f}"))
    assert lines[0].startswith("test0 ribosome: trained picker (TL): ")
