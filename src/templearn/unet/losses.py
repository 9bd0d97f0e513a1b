"""Segmentation losses on logits `[batch, z, y, x, classes]` and integer labels.

- `tversky`: DeepFinder's default, `classes − Σ_c TP_c / (TP_c + α·FP_c + β·FN_c)` with
  soft counts over the batch; α = β = 0.5 is the soft Dice loss.
- `cross_entropy`: mean categorical cross-entropy.
- `tversky-ce`: their sum (as nnU-Net pairs Dice with cross-entropy). A small target fills
  a few % of a patch; the Tversky index alone then gains most by lowering the target's
  probability everywhere, and once the softmax has saturated its gradient vanishes
  (nucleosomes at 8 Å: voxel F1 0 for good after 10 steps). The cross-entropy term keeps
  a gradient of order one on every target voxel.
- `nnpu` and `pu_kl`: TomoPicker's positive-unlabelled losses for sparse annotations
  (a few particle centres painted as spheres, everything else unlabelled): the voxel is
  "particle" with probability `f = 1 − p(background)`; `prior` is the expected share of
  particle voxels among all voxels.
  nnPU: `π·R_P⁺ + max(0, R_U⁻ − π·R_P⁻)` (Kiryo et al. 2017, non-negative risk);
  KL: `R_P⁺ + λ·KL(Bernoulli(E_U[f]) ‖ Bernoulli(π − π_labelled))`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp

from templearn.unet.params import LOSSES

EPSILON = 1e-6


def tversky(logits: jax.Array, labels: jax.Array, alpha: float = 0.5,
            beta: float = 0.5) -> jax.Array:
    """Tversky loss summed over classes (0 when perfect, `classes` at worst)."""
    probs = jax.nn.softmax(logits, axis=-1)
    onehot = jax.nn.one_hot(labels, logits.shape[-1], dtype=probs.dtype)
    axes = tuple(range(logits.ndim - 1))
    tp = (probs * onehot).sum(axes)
    fp = (probs * (1.0 - onehot)).sum(axes)
    fn = ((1.0 - probs) * onehot).sum(axes)
    index = tp / (tp + alpha * fp + beta * fn + EPSILON)
    return logits.shape[-1] - index.sum()


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean categorical cross-entropy."""
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(log_probs, labels[..., None], axis=-1).mean()


def _particle_log_probs(logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """log f and log (1 − f), f = probability of any particle class."""
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    log_background = log_probs[..., 0]
    log_particle = jax.nn.logsumexp(log_probs[..., 1:], axis=-1)
    return log_particle, log_background


def _mean_over(values: jax.Array, mask: jax.Array) -> jax.Array:
    return (values * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def nnpu(logits: jax.Array, labels: jax.Array, prior: float) -> jax.Array:
    """Non-negative PU risk with log loss; labelled voxels (label > 0) are positives."""
    log_f, log_not_f = _particle_log_probs(logits)
    positive = (labels > 0).astype(logits.dtype)
    unlabelled = 1.0 - positive
    risk_positive = _mean_over(-log_f, positive)
    risk_positive_as_negative = _mean_over(-log_not_f, positive)
    risk_unlabelled_negative = _mean_over(-log_not_f, unlabelled)
    negative = risk_unlabelled_negative - prior * risk_positive_as_negative
    return prior * risk_positive + jnp.maximum(negative, 0.0)


def pu_kl(logits: jax.Array, labels: jax.Array, prior: float, weight: float = 1.0
          ) -> jax.Array:
    """Positive risk + λ·KL between the mean particle probability over unlabelled voxels
    and the share of particles expected among them."""
    log_f, _ = _particle_log_probs(logits)
    positive = (labels > 0).astype(logits.dtype)
    unlabelled = 1.0 - positive
    labelled_share = positive.mean()
    expected = jnp.clip(prior - labelled_share, EPSILON, 1.0 - EPSILON)
    mean_f = jnp.clip(_mean_over(jnp.exp(log_f), unlabelled), EPSILON, 1.0 - EPSILON)
    kl = (mean_f * jnp.log(mean_f / expected)
          + (1.0 - mean_f) * jnp.log((1.0 - mean_f) / (1.0 - expected)))
    return _mean_over(-log_f, positive) + weight * kl



def loss_function(name: str, alpha: float = 0.5, beta: float = 0.5, prior: float = 0.01,
                  kl_weight: float = 1.0) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """The loss called `name` (one of `LOSSES`) with its parameters bound."""
    if name == "tversky":
        return partial(tversky, alpha=alpha, beta=beta)
    if name == "dice":
        return partial(tversky, alpha=0.5, beta=0.5)
    if name == "cross-entropy":
        return cross_entropy
    if name == "tversky-ce":
        return lambda logits, labels: (tversky(logits, labels, alpha, beta)
                                       + cross_entropy(logits, labels))
    if name == "nnpu":
        return partial(nnpu, prior=prior)
    if name == "pu-kl":
        return partial(pu_kl, prior=prior, weight=kl_weight)
    raise ValueError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")
