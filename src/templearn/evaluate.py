"""Pick-level evaluation: one-to-one matching of picks to ground truth, P/R/F1 per class.

A pick matches a true particle of the same class (and tomogram) within `distance` voxels;
each pick and each particle is used at most once. The matching is a maximum-cardinality
assignment that, among those, minimises the summed distance: scipy's
`linear_sum_assignment` on the distance matrix with pairs farther than `distance`
forbidden, solved separately on each connected group of the pick–particle
neighbourhood graph (so large tomograms never need a dense matrix).

The sweep keeps picks whose cluster size (or score) is ≥ t for each threshold t (the
distinct values, or at most `max_thresholds` quantiles of them) and recomputes the
matching: the best F1 and its threshold, and the F1 where precision = recall (linear
interpolation between the two thresholds that bracket the crossing; the paper's figure).
Precision with no picks is 0. Over all classes: the mean of the per-class figures and
`overall`, the counts pooled over the targets' classes (micro average).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from templearn import star
from templearn.errors import InputError
from templearn.sample import CLASS_NAME

SWEEPS = {"size": star.CLUSTER_SIZE, "score": star.SCORE}
DEFAULT_DISTANCE = 10.0


def candidate_pairs(picks_xyz: np.ndarray, true_xyz: np.ndarray,
                    distance: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pick index, true index and distance of every pair within `distance`."""
    if len(picks_xyz) == 0 or len(true_xyz) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    pairs = cKDTree(picks_xyz).sparse_distance_matrix(cKDTree(true_xyz), distance,
                                                      output_type="ndarray")
    return pairs["i"].astype(np.int64), pairs["j"].astype(np.int64), pairs["v"]


def match_pairs(i: np.ndarray, j: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of the candidate pairs (i pick, j true, d distance).

    Maximum number of matches, then smallest summed distance; returns matched (i, j).
    """
    if len(i) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    picks, pick_of = np.unique(i, return_inverse=True)
    trues, true_of = np.unique(j, return_inverse=True)
    n_p = len(picks)
    graph = coo_matrix((np.ones(len(i)), (pick_of, n_p + true_of)),
                       shape=(n_p + len(trues),) * 2)
    _, component = connected_components(graph, directed=False)
    group = component[pick_of]
    per_group = np.bincount(group)
    single = per_group[group] == 1  # a pick and a particle that only see each other
    out_i, out_j = [i[single]], [j[single]]
    rest = np.flatnonzero(~single)
    rest = rest[np.argsort(group[rest], kind="stable")]
    bounds = np.flatnonzero(np.diff(group[rest])) + 1
    for members in np.split(rest, bounds) if len(rest) else []:
        gi, ri = np.unique(pick_of[members], return_inverse=True)
        gj, rj = np.unique(true_of[members], return_inverse=True)
        forbidden = float(d[members].sum()) + 1.0  # above any sum of allowed distances
        cost = np.full((len(gi), len(gj)), forbidden)
        cost[ri, rj] = d[members]
        rows, cols = linear_sum_assignment(cost)
        ok = cost[rows, cols] < forbidden
        out_i.append(picks[gi[rows[ok]]])
        out_j.append(trues[gj[cols[ok]]])
    return np.concatenate(out_i), np.concatenate(out_j)


def match_picks(picks_xyz: np.ndarray, true_xyz: np.ndarray,
                distance: float = DEFAULT_DISTANCE) -> tuple[np.ndarray, np.ndarray]:
    """Indices (pick, true) of the one-to-one matches within `distance`."""
    return match_pairs(*candidate_pairs(picks_xyz, true_xyz, distance))


def prf(tp: int, n_picks: int, n_true: int) -> tuple[float, float, float]:
    """Precision, recall and F1 (0 where undefined)."""
    precision = tp / n_picks if n_picks else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * tp / (n_picks + n_true) if n_picks + n_true else 0.0
    return precision, recall, f1


def crossing(thresholds: np.ndarray, precision: np.ndarray,
             recall: np.ndarray) -> tuple[float | None, float | None]:
    """(F1, threshold) where precision = recall, interpolated linearly; the crossing with
    the highest F1 if there are several; (None, None) if the curves never meet."""
    diff = precision - recall
    best: tuple[float | None, float | None] = (None, None)
    for a in range(len(diff)):
        if diff[a] == 0:
            candidate = (float(precision[a]), float(thresholds[a]))
        elif a + 1 < len(diff) and diff[a] * diff[a + 1] < 0:
            w = diff[a] / (diff[a] - diff[a + 1])
            value = precision[a] + w * (precision[a + 1] - precision[a])
            candidate = (float(value), float(thresholds[a] + w * (thresholds[a + 1]
                                                                  - thresholds[a])))
        else:
            continue
        if best[0] is None or candidate[0] > best[0]:
            best = candidate
    return best


def sweep_thresholds(values: np.ndarray, max_thresholds: int = 200) -> np.ndarray:
    """Thresholds to sweep: the distinct values, or `max_thresholds` quantiles of them."""
    finite = np.unique(values[np.isfinite(values)])
    if len(finite) <= max_thresholds:
        return finite
    return np.unique(np.quantile(finite, np.linspace(0, 1, max_thresholds), method="lower"))


def inside_mask(xyz: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Whether each point (x, y, z voxels) lies where the mask is > 0 (nearest voxel)."""
    if len(xyz) == 0:
        return np.zeros(0, bool)
    idx = np.clip(np.rint(xyz[:, ::-1]).astype(np.int64), 0, np.array(mask.shape) - 1)
    return mask[idx[:, 0], idx[:, 1], idx[:, 2]] > 0


def evaluate_picks(picks: pd.DataFrame, targets: pd.DataFrame,
                   distance: float = DEFAULT_DISTANCE, sweep: str = "size",
                   mask: np.ndarray | None = None, max_thresholds: int = 200) -> dict:
    """Per-class precision/recall/F1 of `picks` against `targets` and the threshold sweep.

    Classes are matched by tlClassName when both tables have it, else by tlClassId;
    tomograms by rlnTomoName when either table names several. Returns a JSON-ready dict.
    """
    if sweep not in SWEEPS:
        raise InputError(f"sweep must be one of {', '.join(SWEEPS)}, got {sweep!r}")
    if not distance > 0:
        raise InputError(f"the match distance must be positive, got {distance}")
    class_key = CLASS_NAME if CLASS_NAME in picks and CLASS_NAME in targets else star.CLASS_ID
    for table, what in ((picks, "picks"), (targets, "targets")):
        missing = [c for c in (*star.COORDINATES, class_key) if c not in table]
        if missing:
            raise InputError(f"the {what} lack columns {', '.join(missing)}")
    if mask is not None:
        picks = picks[inside_mask(picks[list(star.COORDINATES)].to_numpy(float), mask)]
        targets = targets[inside_mask(targets[list(star.COORDINATES)].to_numpy(float), mask)]
    if len(targets) == 0:
        raise InputError("no ground-truth particles to evaluate against"
                         + (" inside the mask" if mask is not None else ""))
    column = SWEEPS[sweep]
    by_tomo = several_tomograms(picks, targets)
    result: dict = {"distance": distance, "sweep": sweep, "masked": mask is not None,
                    "matching": "linear_sum_assignment", "classes": {}}
    for cls, truth in targets.groupby(class_key, sort=True):
        mine = picks[picks[class_key] == cls]
        values = (mine[column].to_numpy(float) if column in mine
                  else np.full(len(mine), np.nan))
        if len(mine) and not np.isfinite(values).any():
            raise InputError(f"the picks of {cls} have no {column} values to sweep")
        groups = _tomogram_pairs(mine, truth, distance, by_tomo)
        tp = sum(len(match_pairs(i, j, d)[0]) for i, j, d in groups)
        precision, recall, f1 = prf(tp, len(mine), len(truth))
        entry = {
            "class_id": int(truth[star.CLASS_ID].iloc[0]) if star.CLASS_ID in truth else None,
            "n_true": len(truth), "n_picks": len(mine), "tp": tp,
            "fp": len(mine) - tp, "fn": len(truth) - tp,
            "precision": precision, "recall": recall, "f1": f1,
        }
        entry.update(_sweep(values, groups, len(truth), max_thresholds))
        result["classes"][str(cls)] = entry
    extra = sorted(set(picks[class_key].astype(str)) - set(result["classes"]))
    result["unmatched_pick_classes"] = extra
    f1s = [c["f1_at_p_eq_r"] for c in result["classes"].values() if c["f1_at_p_eq_r"] is not None]
    result["mean_f1_at_p_eq_r"] = float(np.mean(f1s)) if f1s else None
    result["mean_best_f1"] = float(np.mean([c["best_f1"] for c in result["classes"].values()]))
    result["mean_f1"] = float(np.mean([c["f1"] for c in result["classes"].values()]))
    tp, n_picks, n_true = (sum(c[k] for c in result["classes"].values())
                           for k in ("tp", "n_picks", "n_true"))
    precision, recall, f1 = prf(tp, n_picks, n_true)
    result["overall"] = {"n_true": n_true, "n_picks": n_picks, "tp": tp, "fp": n_picks - tp,
                         "fn": n_true - tp, "precision": precision, "recall": recall, "f1": f1}
    return result


def several_tomograms(picks: pd.DataFrame, targets: pd.DataFrame) -> bool:
    """Whether either table names more than one tomogram (then matching is per tomogram)."""
    return any(star.TOMO_NAME in t and t[star.TOMO_NAME].nunique() > 1 for t in (picks, targets))


def fbeta(tp: int, n_picks: int, n_true: int, beta: float) -> float:
    """F-beta = (1 + β²)·TP / ((1 + β²)·TP + β²·FN + FP); 0 with no picks and no particles."""
    b2 = beta * beta
    denominator = (1 + b2) * tp + b2 * (n_true - tp) + (n_picks - tp)
    return (1 + b2) * tp / denominator if denominator else 0.0


def czii_score(picks: pd.DataFrame, targets: pd.DataFrame, radii: dict[str, float],
               weights: dict[str, float], fraction: float = 0.5, beta: float = 4.0) -> dict:
    """The CZII cryo-ET challenge metric: per class (tlClassName), picks match particles one
    to one within `fraction` × that class's radius (voxels), counts pooled over tomograms;
    F-beta per class and its mean over the classes weighted by `weights` (default 1).

    The challenge's own script counts a particle as found when any pick lies within the
    distance; here each pick finds at most one particle, so β = 1 gives our F1.
    """
    missing = [what for what, t in (("picks", picks), ("targets", targets))
               if CLASS_NAME not in t]
    if missing:
        raise InputError(f"the CZII metric needs {CLASS_NAME} in the {missing[0]}")
    by_tomo = several_tomograms(picks, targets)
    classes: dict[str, dict] = {}
    for cls, truth in targets.groupby(CLASS_NAME, sort=True):
        name = str(cls)
        if name not in radii:
            raise InputError(f"no radius for {name}: give --radius {name}=VOX (or a "
                             f"--copick-config whose object {name!r} has a radius)")
        mine = picks[picks[CLASS_NAME].astype(str) == name]
        distance = fraction * radii[name]
        tp = sum(len(match_pairs(i, j, d)[0])
                 for i, j, d in _tomogram_pairs(mine, truth, distance, by_tomo))
        precision, recall, _ = prf(tp, len(mine), len(truth))
        classes[name] = {"distance": distance, "n_true": len(truth), "n_picks": len(mine),
                         "tp": tp, "fp": len(mine) - tp, "fn": len(truth) - tp,
                         "precision": precision, "recall": recall, "weight": weights.get(name, 1.0),
                         "fbeta": fbeta(tp, len(mine), len(truth), beta)}
    unknown = sorted(set(weights) - set(classes))
    if unknown:
        raise InputError(f"--weight names {unknown[0]!r}, not a class of the targets "
                         f"({', '.join(classes)})")
    total = sum(c["weight"] for c in classes.values())
    score = sum(c["weight"] * c["fbeta"] for c in classes.values()) / total if total else 0.0
    return {"beta": beta, "fraction": fraction, "score": score, "classes": classes}


def _tomogram_pairs(picks: pd.DataFrame, truth: pd.DataFrame, distance: float,
                    by_tomo: bool) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Candidate pairs per tomogram, with pick indices into `picks` (row order)."""
    p_xyz = picks[list(star.COORDINATES)].to_numpy(float)
    t_xyz = truth[list(star.COORDINATES)].to_numpy(float)
    if not by_tomo:
        return [candidate_pairs(p_xyz, t_xyz, distance)]
    p_names = picks[star.TOMO_NAME].astype(str).to_numpy() if star.TOMO_NAME in picks \
        else np.full(len(picks), "")
    t_names = truth[star.TOMO_NAME].astype(str).to_numpy() if star.TOMO_NAME in truth \
        else np.full(len(truth), "")
    groups = []
    for name in np.unique(t_names):
        pi, ti = np.flatnonzero(p_names == name), np.flatnonzero(t_names == name)
        i, j, d = candidate_pairs(p_xyz[pi], t_xyz[ti], distance)
        groups.append((pi[i], ti[j], d))
    return groups


def _sweep(values: np.ndarray, groups: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
           n_true: int, max_thresholds: int) -> dict:
    """P/R/F1 keeping picks with value ≥ t for each threshold t; best F1 and F1 at P = R."""
    thresholds = sweep_thresholds(values, max_thresholds)
    rows = []
    for t in thresholds:
        keep = values >= t
        tp = 0
        for i, j, d in groups:
            sel = keep[i]
            tp += len(match_pairs(i[sel], j[sel], d[sel])[0])
        rows.append((int(keep.sum()), *prf(tp, int(keep.sum()), n_true)))
    table = np.array(rows, dtype=float).reshape(-1, 4)
    n_picks, precision, recall, f1 = table.T
    best = int(np.argmax(f1)) if len(f1) else None
    f1_cross, t_cross = crossing(thresholds, precision, recall)
    return {
        "sweep": {"thresholds": thresholds.tolist(), "n_picks": n_picks.astype(int).tolist(),
                  "precision": precision.tolist(), "recall": recall.tolist(),
                  "f1": f1.tolist()},
        "best_f1": float(f1[best]) if best is not None else 0.0,
        "best_threshold": float(thresholds[best]) if best is not None else None,
        "f1_at_p_eq_r": f1_cross, "threshold_at_p_eq_r": t_cross,
    }
