"""Preparing tomograms for the network: z-score and spectral whitening."""

import json

import numpy as np
import pytest

from templearn.errors import InputError
from templearn.shells import shell_frequencies
from templearn.unet.normalise import normalise, whiten
from templearn.unet.params import Normalisation


def radial_filter(volume: np.ndarray, gain) -> np.ndarray:
    """`volume` with every Fourier coefficient multiplied by `gain(|k|)`."""
    k = shell_frequencies(volume.shape)
    return np.fft.irfftn(np.fft.rfftn(volume) * gain(k), s=volume.shape,
                         axes=(0, 1, 2)).astype(np.float32)


def shell_power(volume: np.ndarray) -> np.ndarray:
    k = shell_frequencies(volume.shape)
    shell = (k * max(volume.shape)).astype(int).ravel()
    power = np.abs(np.fft.rfftn(volume)).ravel() ** 2
    return np.bincount(shell, power) / np.maximum(np.bincount(shell), 1)


@pytest.fixture
def coloured(rng):
    """Noise with a steep, CTF-like spectrum, and a ball planted in it."""
    volume = rng.standard_normal((24, 32, 40)).astype(np.float32)
    zz, yy, xx = np.indices(volume.shape)
    volume[(zz - 12) ** 2 + (yy - 16) ** 2 + (xx - 20) ** 2 <= 16] += 3.0
    return radial_filter(volume, lambda k: 1.0 / (0.05 + k**1.5))


def test_whitening_flattens_the_spectrum_then_applies_the_envelope(coloured):
    before = shell_power(coloured)[1:20]
    assert before.max() / before.min() > 100
    flat = shell_power(whiten(coloured, 0.0))[1:20]
    np.testing.assert_allclose(flat / flat.mean(), 1.0, rtol=1e-3)
    sigma = 1.0
    shaped = shell_power(whiten(coloured, sigma))[1:20]
    k = (np.arange(1, 20) + 0.5) / max(coloured.shape)
    expected = np.exp(-4 * np.pi**2 * sigma**2 * k**2)
    np.testing.assert_allclose(shaped / shaped[0], expected / expected[0], rtol=0.1)


def test_high_pass_removes_the_scales_its_gaussian_keeps(coloured):
    """The high-passed whitened spectrum follows 1 − exp(−2π²σ²k²) squared: nothing at the
    lowest shells, the whitened spectrum where the Gaussian has fallen away."""
    sigma = 4.0
    passed = shell_power(whiten(coloured, 0.0, sigma))[1:20]
    k = (np.arange(1, 20) + 0.5) / max(coloured.shape)
    expected = (1 - np.exp(-2 * np.pi**2 * sigma**2 * k**2)) ** 2
    np.testing.assert_allclose(passed / passed[-1], expected / expected[-1], rtol=0.1)
    assert passed[0] < 0.2 * passed[-1]


def test_whitening_undoes_any_radial_filter(coloured):
    """Two 'simulators' that shape the same specimen's spectrum differently give the
    network the same input: the point of whitening."""
    gains = np.random.default_rng(7).uniform(0.05, 5.0, 100)  # one per frequency shell
    other = radial_filter(coloured, lambda k: gains[(k * max(coloured.shape)).astype(int)])
    np.testing.assert_allclose(whiten(other, 1.0), whiten(coloured, 1.0), atol=1e-4)
    zscore = Normalisation("zscore")
    assert np.abs(normalise(other, zscore) - normalise(coloured, zscore)).max() > 0.5


def test_normalised_tomograms_are_z_scored(coloured):
    for how in (Normalisation("zscore"), Normalisation("whiten", 0.5)):
        out = normalise(coloured * 7 + 3, how)
        assert out.dtype == np.float32
        assert abs(float(out.mean())) < 1e-5 and abs(float(out.std()) - 1) < 1e-4


def test_normalisation_is_validated():
    with pytest.raises(InputError, match="--normalise"):
        Normalisation("histogram").validate()
    with pytest.raises(InputError, match="--whiten-lowpass"):
        Normalisation("whiten", -1.0).validate()
    with pytest.raises(InputError, match="--whiten-highpass"):
        Normalisation("whiten", 1.0, -2.0).validate()


def test_models_record_their_normalisation(tmp_path):
    from templearn.unet.model import UNetConfig
    from templearn.unet.store import MODEL_JSON, ModelInfo, read_info

    config = UNetConfig(classes=2, widths=(4, 4, 4))
    info = ModelInfo(config, ["background", "ball"], 16.0, 16, Normalisation("whiten", 0.5))
    (tmp_path / MODEL_JSON).write_text(info.to_json())
    assert read_info(tmp_path).normalisation == Normalisation("whiten", 0.5)
    before_high_pass = json.loads(info.to_json())
    before_high_pass["normalisation"].pop("highpass")
    (tmp_path / MODEL_JSON).write_text(json.dumps(before_high_pass))
    assert read_info(tmp_path).normalisation == Normalisation("whiten", 0.5, 0.0)
    legacy = json.loads(info.to_json()) | {"normalisation": "z-score of the whole tomogram"}
    (tmp_path / MODEL_JSON).write_text(json.dumps(legacy))
    assert read_info(tmp_path).normalisation == Normalisation("zscore")
    broken = legacy | {"normalisation": {"method": "histogram", "lowpass": 1.0}}
    (tmp_path / MODEL_JSON).write_text(json.dumps(broken))
    with pytest.raises(InputError, match="unreadable"):
        read_info(tmp_path)


def halves_of(signal: np.ndarray, noise_sd: float, rng) -> tuple:
    """A tomogram and its even/odd halves: the same signal, independent noise in each
    half; the tomogram is their mean, as WBP of all tilts is."""
    even = signal + rng.standard_normal(signal.shape).astype(np.float32) * noise_sd
    odd = signal + rng.standard_normal(signal.shape).astype(np.float32) * noise_sd
    return (even + odd) / 2, even, odd


def test_whiten_noise_puts_the_noise_at_unit_sd_whatever_the_signal(coloured, rng):
    """Z-scoring divides by the whole tomogram's s.d.: the stronger the particles, the
    weaker the noise looks. In noise units the noise stays at 1 and the particles grow."""
    how = Normalisation("whiten-noise", 1.0, 4.0)
    signal = coloured / coloured.std()
    ratios = []
    for strength in (0.0, 1.0, 4.0):
        tomogram, even, odd = halves_of(signal * strength, 1.0, rng)
        out = normalise(tomogram, how, (even, odd))
        noise_only = normalise(tomogram - signal * strength, how, (even, odd))
        assert abs(float(noise_only.std()) - 1) < 0.05
        np.testing.assert_allclose(out, normalise(tomogram, Normalisation("whiten", 1, 4))
                                   * float(out.std()), atol=1e-3)
        ratios.append(float(out.std()))
    assert ratios[0] < 1.1 and ratios[1] > 1.3 and ratios[2] > 2 * ratios[1]


def test_whiten_noise_needs_two_different_halves(coloured):
    how = Normalisation("whiten-noise")
    with pytest.raises(InputError, match="half tomograms"):
        normalise(coloured, how)
    with pytest.raises(InputError, match="identical"):
        normalise(coloured, how, (coloured, coloured))




def test_whiten_snr_whitens_the_noise_not_the_tomogram(coloured, rng):
    """Per shell in units of its own noise: the filter comes from the half tomograms only
    (so it is linear in the tomogram), and noise whose power rises with frequency (as a WBP
    tomogram's does) comes out white at unit s.d. under a strong signal."""
    signal = coloured / coloured.std() * 4
    even, odd = (signal + radial_filter(rng.standard_normal(signal.shape).astype(np.float32),
                                        lambda k: 0.1 + 4 * k) for _ in range(2))
    tomogram = (even + odd) / 2
    how = Normalisation("whiten-snr", 0.0)
    out = normalise(tomogram, how, (even, odd))
    noise = normalise(tomogram - signal, how, (even, odd))
    np.testing.assert_allclose(out, noise + normalise(signal, how, (even, odd)), atol=1e-3)
    assert abs(float(noise.std()) - 1) < 0.05
    before = shell_power(tomogram - signal)[2:20]
    after = shell_power(noise)[2:20]
    assert before.max() / before.min() > 20 and after.max() / after.min() < 1.5
    # whiten-noise flattens the tomogram's spectrum, not the noise's: not linear
    other = Normalisation("whiten-noise", 0.0)
    assert np.abs(normalise(tomogram, other, (even, odd)) - normalise(
        tomogram - signal, other, (even, odd)) - normalise(signal, other, (even, odd))).max() > 0.1
