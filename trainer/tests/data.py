"""Synthetic tables with known signal, one per problem type (seeded; `seed` varies the rows, not the rules)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _base(n: int, rng: np.random.Generator) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "feature one": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "noise": rng.normal(size=n),
            "Colour": rng.choice(["red", "green", "blue", "violet"], size=n),
        }
    )
    frame.loc[rng.random(n) < 0.05, "noise"] = np.nan
    frame.loc[rng.random(n) < 0.05, "Colour"] = None
    return frame


def binary(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = _base(n, rng)
    logit = 2.0 * frame["feature one"] - 1.5 * frame["x2"] + 1.5 * (frame["Colour"] == "red")
    frame["churned"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return frame


def multiclass(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = _base(n, rng)
    scores = (
        np.stack(
            [
                2.0 * frame["feature one"],
                2.0 * frame["x2"],
                1.5 + 2.0 * (frame["Colour"] == "red") - frame["feature one"] - frame["x2"],
            ],
            axis=1,
        )
        + rng.gumbel(size=(n, 3)) * 0.5
    )
    frame["segment"] = np.array(["bronze", "silver", "gold"])[scores.argmax(axis=1)]
    return frame


def regression(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = _base(n, rng)
    frame["spend"] = (
        3.0 * frame["feature one"] + frame["x2"] ** 2 + 2.0 * (frame["Colour"] == "blue") + rng.normal(0, 0.5, n)
    )
    return frame


def ranking(groups: int = 150, per_group: int = 10, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = groups * per_group
    frame = _base(n, rng)
    frame["query_id"] = np.repeat([f"q{i}" for i in range(groups)], per_group)
    frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # rows of a query not contiguous
    signal = 1.5 * frame["feature one"] - frame["x2"] + rng.normal(0, 0.4, n)
    frame["relevance"] = np.clip(np.round(signal + 1), 0, 4).astype(int)
    return frame


def anomaly(n: int = 1200, rate: float = 0.05, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = _base(n, rng)
    outlier = rng.random(n) < rate
    frame.loc[outlier, "feature one"] = rng.normal(5, 1, outlier.sum())
    frame.loc[outlier, "x2"] = rng.normal(-5, 1, outlier.sum())
    frame["is_anomaly"] = outlier.astype(int)
    return frame


def bandit_best_action(frame: pd.DataFrame) -> np.ndarray:
    x = frame["feature one"].to_numpy()
    return np.where(x > 0.4, "email", np.where(x < -0.4, "push", "banner"))


def bandit(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Uniform logging over 3 actions; reward 1 w.p. 0.8 for the context's best action, 0.2 otherwise."""
    rng = np.random.default_rng(seed)
    frame = _base(n, rng)
    actions = np.array(["banner", "email", "push"])
    frame["shown"] = actions[rng.integers(0, 3, n)]
    frame["p_logged"] = 1.0 / 3.0
    best = bandit_best_action(frame)
    p_reward = np.where(frame["shown"].to_numpy() == best, 0.8, 0.2)
    frame["clicked"] = (rng.random(n) < p_reward).astype(float)
    return frame
