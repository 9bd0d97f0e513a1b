"""Losses, patch sampling, tiled segmentation and training (tiny models, few steps)."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from templearn.unet import losses
from templearn.unet.data import LabelledTomogram, SamplingParams, sample_batch
from templearn.unet.normalise import normalise
from templearn.unet.segment import TileParams, segment, tile_starts


def planted(seed: int, n: int = 10, shape=(32, 48, 48), radius: float = 3.5):
    """Noise with bright balls (class 1) at random, non-touching centres."""
    rng = np.random.default_rng(seed)
    volume = rng.normal(0, 1, shape).astype(np.float32)
    labels = np.zeros(shape, np.uint8)
    zz, yy, xx = np.indices(shape)
    centres: list[np.ndarray] = []
    while len(centres) < n:
        c = rng.uniform([6, 6, 6], np.array(shape[::-1]) - 6)
        if all(np.linalg.norm(c - o) > 3 * radius for o in centres):
            inside = (xx - c[0]) ** 2 + (yy - c[1]) ** 2 + (zz - c[2]) ** 2 <= radius**2
            volume[inside] += 2.0
            labels[inside] = 1
            centres.append(c)
    return LabelledTomogram(f"t{seed}", normalise(volume), labels, np.array(centres),
                            np.ones(n, int), 16.0)


def test_tversky_is_zero_when_perfect_and_classes_when_wrong():
    labels = jnp.array([[0, 1, 1, 0]])
    perfect = 50.0 * (2 * jnp.eye(2)[labels] - 1)
    assert float(losses.tversky(perfect, labels)) == pytest.approx(0.0, abs=1e-4)
    assert float(losses.tversky(-perfect, labels)) == pytest.approx(2.0, abs=1e-4)
    # α weighs false positives: predicting class 1 everywhere costs more with larger α
    all_one = jnp.stack([jnp.full(4, -50.0), jnp.full(4, 50.0)], -1)[None]
    assert float(losses.tversky(all_one, labels, 0.9, 0.1)) > float(
        losses.tversky(all_one, labels, 0.1, 0.9))


def test_cross_entropy_matches_the_definition(rng):
    logits = jnp.asarray(rng.normal(size=(2, 5, 3)))
    labels = jnp.asarray(rng.integers(0, 3, (2, 5)))
    probs = np.exp(np.asarray(logits)) / np.exp(np.asarray(logits)).sum(-1, keepdims=True)
    expected = -np.log(np.take_along_axis(probs, np.asarray(labels)[..., None], -1)).mean()
    assert float(losses.cross_entropy(logits, labels)) == pytest.approx(expected, rel=1e-5)


def test_tversky_ce_keeps_a_gradient_where_tversky_has_collapsed():
    """A rare class predicted nowhere (softmax saturated): the Tversky loss barely pushes
    its logit up on the target voxels any more; Tversky plus cross-entropy still does."""
    import jax

    labels = jnp.zeros((1, 16, 16, 16), jnp.int32).at[0, 6:9, 6:9, 6:9].set(1)  # 0.7 %
    logits = jnp.stack([jnp.full(labels.shape, 5.0), jnp.full(labels.shape, -5.0)], axis=-1)
    combined = losses.loss_function("tversky-ce")
    assert float(combined(logits, labels)) == pytest.approx(
        float(losses.tversky(logits, labels) + losses.cross_entropy(logits, labels)), rel=1e-6)
    target = labels == 1
    pushes = {}
    for name in ("tversky", "tversky-ce"):
        grad = jax.grad(losses.loss_function(name))(logits, labels)
        pushes[name] = -float(grad[..., 1][target].sum())  # upward push on the target logit
    assert pushes["tversky-ce"] > 5 * pushes["tversky"] > 0


def test_pu_losses_reward_finding_the_positives_and_stay_non_negative():
    labels = jnp.zeros((1, 100), int).at[0, :5].set(1)  # 5 labelled of ~10 true positives
    truth = jnp.zeros(100).at[:10].set(1)
    good = jnp.stack([-8 * (2 * truth - 1), 8 * (2 * truth - 1)], -1)[None]
    everything = jnp.stack([jnp.full(100, -8.0), jnp.full(100, 8.0)], -1)[None]
    nothing = -everything
    for name in ("nnpu", "pu-kl"):
        fn = losses.loss_function(name, prior=0.1)
        assert float(fn(good, labels)) < float(fn(nothing, labels))
        assert float(fn(good, labels)) < float(fn(everything, labels))
        assert float(fn(everything, labels)) >= 0


def test_batches_are_reproducible_centred_and_never_mirrored():
    data = [planted(1), planted(2)]
    params = SamplingParams(patch=16, batch=6, shift=0, background_fraction=0.0)
    a = sample_batch(data, 2, params, seed=3, step=7)
    b = sample_batch(data, 2, params, seed=3, step=7)
    c = sample_batch(data, 2, params, seed=3, step=8)
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])
    images, labels = a
    assert images.shape == (6, 16, 16, 16, 1) and labels.shape == (6, 16, 16, 16)
    assert np.all(labels[:, 8, 8, 8] == 1)  # centred on a particle (no shift)
    # the labels stay on the bright voxels whether or not the patch was rotated
    for image, label in zip(images[..., 0], labels, strict=True):
        assert image[label == 1].mean() > image[label == 0].mean() + 1.5


def test_tiled_segmentation_equals_whole_volume_prediction(rng):
    volume = rng.normal(size=(20, 37, 45)).astype(np.float32)

    def predict(tiles):  # a pointwise "network": tiling must not change anything
        p = 1 / (1 + np.exp(-tiles))
        return np.concatenate([1 - p, p], axis=-1)

    for params in (TileParams(tile=16, crop=3), TileParams(tile=12, crop=2, overlap=3, batch=4)):
        scores, labels = segment(volume, predict, 2, params)
        expected = 1 / (1 + np.exp(-volume))
        np.testing.assert_allclose(scores[1], expected, rtol=1e-5, atol=1e-6)
        assert np.array_equal(labels, (expected > 0.5).astype(np.uint8))
    starts = tile_starts(45, TileParams(tile=16, crop=3))
    assert starts[0] == 0 and starts[-1] == 45 - 16 and np.all(np.diff(starts) <= 10)


def test_rotation_averaging_undoes_each_half_turn(rng):
    """A "network" that weights each voxel by its place in the tile sees the same tile in
    four orientations: the average is the mean of the place weights turned back. A
    pointwise network (no place) is left unchanged."""
    from templearn.unet.segment import rotation_averaged

    tiles = rng.normal(size=(2, 6, 7, 8, 1)).astype(np.float32)
    place = rng.uniform(size=(1, 6, 7, 8, 1)).astype(np.float32)
    averaged = rotation_averaged(lambda t: t * place)(tiles)
    turned_back = [place[0, :, :, :, 0], place[0, :, ::-1, ::-1, 0],   # about z: y, x reversed
                   place[0, ::-1, :, ::-1, 0], place[0, ::-1, ::-1, :, 0]]
    np.testing.assert_allclose(averaged[..., 0], tiles[..., 0] * np.mean(turned_back, axis=0),
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(averaged, tiles * place)

    def pointwise(t):
        return np.concatenate([np.tanh(t), t**2], axis=-1)

    np.testing.assert_allclose(rotation_averaged(pointwise)(tiles), pointwise(tiles),
                               rtol=1e-6, atol=1e-6)


def test_validation_picking_uses_the_method_it_is_given():
    """Touching pairs of balls: connected components see one cluster per pair (a pick
    between the two, 3 voxels from each), MeanShift at the balls' radius one per ball."""
    from templearn.unet.params import ValidationPicking
    from templearn.unet.train import pick_level_metrics, picking_defaults

    shape = (24, 40, 40)
    zz, yy, xx = np.indices(shape)
    volume = np.full(shape, -5.0, np.float32)
    centres = np.array([[10, 12, 12], [16, 12, 12], [10, 28, 12], [16, 28, 12]], float)
    for x, y, z in centres:
        volume[(xx - x) ** 2 + (yy - y) ** 2 + (zz - z) ** 2 <= 9.5] = 5.0
    item = LabelledTomogram("pairs", volume, (volume > 0).astype(np.uint8), centres,
                            np.ones(4, int), 16.0)

    def predict(tiles):  # a pointwise "network"
        p = 1 / (1 + np.exp(-tiles))
        return np.concatenate([1 - p, p], axis=-1)

    def recall(how):
        metrics = pick_level_metrics(predict, [item], ["background", "ball"],
                                     TileParams(tile=24, crop=0), how)
        return metrics, metrics["classes"]["ball"]["recall"]

    metrics, by_components = recall(ValidationPicking(distance=2.0))
    assert by_components == 0.0 and "components" in picking_defaults(metrics)["source"]
    metrics, by_meanshift = recall(ValidationPicking("meanshift", {"ball": 3.0}, 2.0))
    assert by_meanshift == 1.0 and "meanshift" in picking_defaults(metrics)["source"]


TINY = dict(classes=2, widths=(8, 8, 8), bottleneck_convs=1)


def tiny_params(epochs: int, steps: int):
    from templearn.unet.train import TrainParams

    return TrainParams(epochs=epochs, steps=steps, learning_rate=3e-3, loss="cross-entropy",
                       validation_batches=2,
                       sampling=SamplingParams(patch=16, batch=4, shift=4,
                                               background_fraction=0.2))


@pytest.mark.slow
def test_training_learns_and_the_model_finds_planted_particles(tmp_path):
    from templearn.unet.model import UNetConfig
    from templearn.unet.segment import predictor
    from templearn.unet.store import load_model
    from templearn.unet.train import CURVES_NAME, LOG_NAME, PICK_METRICS, train

    data = [planted(1), planted(2)]
    _, rows = train(data[:1], data[1:], ["background", "ball"], UNetConfig(**TINY),
                    tiny_params(4, 25), tmp_path)
    assert rows[-1]["train_loss"] < 0.5 * rows[0]["train_loss"]
    assert rows[-1]["val_f1_ball"] > 0.5
    assert (tmp_path / LOG_NAME).exists() and (tmp_path / CURVES_NAME).exists()
    picks = json.loads((tmp_path / PICK_METRICS).read_text())["classes"]["ball"]
    assert picks["n_true"] == 10 and picks["best_f1"] >= 0.8, picks
    model, info = load_model(tmp_path / "model")
    assert info.class_names == ["background", "ball"] and info.patch == 16
    held_out = data[1]
    _, labels = segment(held_out.tomogram, predictor(model, 2), 2,
                        TileParams(tile=16, crop=2, batch=2))
    centres = np.round(held_out.centres_xyz).astype(int)
    found = labels[centres[:, 2], centres[:, 1], centres[:, 0]] == 1
    assert found.mean() >= 0.8
    assert (labels == 1).sum() < 3 * (held_out.labels == 1).sum()


@pytest.mark.slow
def test_a_killed_training_resumes_exactly(tmp_path):
    import jax
    from flax import nnx

    from templearn.unet.model import UNetConfig
    from templearn.unet.store import load_model
    from templearn.unet.train import train

    data, names, config = [planted(3)], ["background", "ball"], UNetConfig(**TINY)
    train(data, [], names, config, tiny_params(2, 3), tmp_path / "straight")
    train(data, [], names, config, tiny_params(1, 3), tmp_path / "killed")  # "killed" after 1
    _, rows = train(data, [], names, config, tiny_params(2, 3), tmp_path / "killed")
    assert [r["epoch"] for r in rows] == [1, 2]
    straight = nnx.state(load_model(tmp_path / "straight" / "model")[0], nnx.Param)
    resumed = nnx.state(load_model(tmp_path / "killed" / "model")[0], nnx.Param)
    for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_training_reports_progress_and_the_time_left(monkeypatch):
    """A line after the first (compiling) step, an estimate after the second, then one
    every `log_every_s` seconds within an epoch."""
    from templearn.unet import train as unet_train
    from templearn.unet.params import TrainParams

    clock = iter([0.0, 50.0, 54.0, 58.0, 62.0, 100.0])
    lines: list[str] = []
    monkeypatch.setattr(unet_train.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(unet_train, "log", lines.append)
    progress = unet_train.StepProgress(TrainParams(epochs=2, steps=5), start_epoch=0)
    for s in range(5):
        progress.step(0, s, [1.0] * (s + 1))
    assert len(lines) == 3, lines
    assert "first step done in 50 s" in lines[0] and "9 of 10 steps" in lines[0]
    assert "4 s per step of 25 × 48³" in lines[1] and "time left 32 s" in lines[1]
    assert "epoch 1/2 step 5/5" in lines[2] and "about 62 s left" in lines[2]
    assert unet_train.duration(3 * 86400) == "3.0 days"
    assert unet_train.duration(5400) == "1.5 h"


def test_cosine_schedule_decays_from_the_rate_to_zero_over_the_run():
    from templearn.unet.params import TrainParams
    from templearn.unet.train import learning_rate_schedule

    cosine = learning_rate_schedule(TrainParams(epochs=4, steps=25, learning_rate=3e-3,
                                                lr_schedule="cosine"))
    rates = [float(cosine(k)) for k in (0, 50, 100)]
    np.testing.assert_allclose(rates, [3e-3, 1.5e-3, 0.0], atol=1e-9)
    assert float(cosine(25)) > float(cosine(26))
    constant = learning_rate_schedule(TrainParams(epochs=4, steps=25, learning_rate=3e-3))
    assert float(constant(0)) == float(constant(99)) == pytest.approx(3e-3)
