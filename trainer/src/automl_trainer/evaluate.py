"""Stage 4: metrics per problem type, and the one objective each problem type optimises."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from sklearn import metrics as skm

from automl_trainer.prepare import Data

# problem type → (objective metric, optuna direction)
Direction = Literal["maximize", "minimize"]
OBJECTIVES: dict[str, tuple[str, Direction]] = {
    "binary_classification": ("roc_auc", "maximize"),
    "multiclass_classification": ("log_loss", "minimize"),
    "regression": ("rmse", "minimize"),
    "ranking": ("ndcg_at_10", "maximize"),
    "anomaly_detection": ("roc_auc", "maximize"),
    "contextual_bandit": ("policy_value_snips", "maximize"),
}

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def evaluate(problem: str, data: Data, scores: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """The metrics of `scores` on `data`. Classifiers: besides the ranking, what a user acts on: log loss and
    Brier score (how good the probabilities are), accuracy and F1 of the labels (a binary classifier's at
    `threshold` on P(class 1)), and the majority-class rate those labels must beat."""
    if problem == "binary_classification":
        assert data.y is not None
        p = np.clip(scores, 1e-15, 1 - 1e-15)
        predicted = (p >= threshold).astype(np.int64)
        result = {
            "log_loss": float(skm.log_loss(data.y, p, labels=[0, 1])),
            "brier": float(np.mean((p - data.y) ** 2)),
            "accuracy": float(skm.accuracy_score(data.y, predicted)),
            "f1": float(skm.f1_score(data.y, predicted, zero_division=0)),
            "majority_rate": majority_rate(data.y),
        }
        if len(np.unique(data.y)) == 2:
            result["roc_auc"] = float(skm.roc_auc_score(data.y, p))
        return result
    if problem == "multiclass_classification":
        assert data.y is not None
        k = scores.shape[1]
        p = np.clip(scores, 1e-15, 1.0)
        p = p / p.sum(axis=1, keepdims=True)
        predicted = p.argmax(axis=1)
        return {
            "log_loss": float(skm.log_loss(data.y, p, labels=list(range(k)))),
            "brier": float(np.mean(np.sum((p - np.eye(k)[data.y]) ** 2, axis=1))),
            "accuracy": float(skm.accuracy_score(data.y, predicted)),
            "f1_macro": float(skm.f1_score(data.y, predicted, average="macro", zero_division=0)),
            "majority_rate": majority_rate(data.y),
        }
    if problem == "regression":
        assert data.y is not None
        return {
            "rmse": float(math.sqrt(skm.mean_squared_error(data.y, scores))),
            "mae": float(skm.mean_absolute_error(data.y, scores)),
            "r2": float(skm.r2_score(data.y, scores)),
        }
    if problem == "ranking":
        assert data.y is not None and data.group is not None
        return {
            "ndcg_at_10": mean_ndcg(data.y, scores, data.group, 10),
            "ndcg_at_10_random_order": random_order_ndcg(data.y, data.group, 10),
        }
    if problem == "anomaly_detection":
        result = {f"score_p{round(q * 100):02d}": float(np.quantile(scores, q)) for q in QUANTILES}
        result["score_mean"] = float(np.mean(scores))
        result["score_std"] = float(np.std(scores))
        if data.y is not None and len(np.unique(data.y)) == 2:
            result["roc_auc"] = float(skm.roc_auc_score(data.y, scores))
            result["average_precision"] = float(skm.average_precision_score(data.y, scores))
            result["anomaly_rate"] = float(np.mean(data.y))
        return result
    if problem == "contextual_bandit":
        return off_policy(data, scores)
    raise ValueError(problem)


def majority_rate(y: np.ndarray) -> float:
    """The accuracy of labelling every row with the most frequent class."""
    return float(np.bincount(np.asarray(y, dtype=np.int64)).max() / len(y)) if len(y) else float("nan")


def dcg(relevance: np.ndarray, k: int) -> float:
    top = relevance[:k].astype(np.float64)
    return float(np.sum((2.0**top - 1.0) / np.log2(np.arange(2, len(top) + 2))))


def mean_ndcg(y: np.ndarray, scores: np.ndarray, group: np.ndarray, k: int) -> float:
    """Mean NDCG@k over queries with at least one relevant row (gain 2^rel - 1, as LightGBM/XGBoost)."""
    values = []
    for g in np.unique(group):
        rows = group == g
        rel = y[rows]
        ideal = dcg(np.sort(rel)[::-1], k)
        if ideal <= 0:
            continue
        order = np.argsort(-scores[rows], kind="stable")
        values.append(dcg(rel[order], k) / ideal)
    return float(np.mean(values)) if values else float("nan")


def random_order_ndcg(y: np.ndarray, group: np.ndarray, k: int, repeats: int = 20) -> float:
    """The baseline: expected NDCG@k of a random order (averaged over seeded shuffles)."""
    rng = np.random.default_rng(0)
    return float(np.mean([mean_ndcg(y, rng.random(len(y)), group, k) for _ in range(repeats)]))


def off_policy(data: Data, estimated_reward: np.ndarray) -> dict[str, float]:
    """Off-policy value of the greedy learned policy on logged data, against the logging policy's own value.

    IPS: mean(1[π(x)=a]·r/p); SNIPS: the same self-normalised (lower variance, what the tuner optimises);
    DR (doubly robust): mean(r̂(x,π(x)) + 1[π(x)=a]·(r − r̂(x,a))/p), r̂ the model's own reward estimate.
    """
    assert data.action is not None and data.reward is not None and data.propensity is not None
    n = len(data.action)
    chosen = estimated_reward.argmax(axis=1)
    match = (chosen == data.action).astype(np.float64)
    weight = match / data.propensity
    rows = np.arange(n)
    ips = float(np.mean(weight * data.reward))
    snips = float(np.sum(weight * data.reward) / np.sum(weight)) if np.sum(weight) > 0 else float("nan")
    dr = float(np.mean(estimated_reward[rows, chosen] + weight * (data.reward - estimated_reward[rows, data.action])))
    logged = float(np.mean(data.reward))
    return {
        "policy_value_snips": snips,
        "policy_value_ips": ips,
        "policy_value_dr": dr,
        "logged_policy_value": logged,
        "policy_lift_snips": snips - logged,
        "policy_match_rate": float(np.mean(match)),
    }
