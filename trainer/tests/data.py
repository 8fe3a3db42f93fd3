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


def cards(n: int = 1319, seed: int = 0) -> pd.DataFrame:
    """Credit card applications as in the classic AER table: about 3:1 accepted; spending on the card all but
    decides it (an accepted applicant spends, a refused one does not), so the ranking is near perfect early."""
    rng = np.random.default_rng(seed)
    accepted = rng.random(n) < 0.776
    income = rng.gamma(4.0, 0.85, n)
    expenditure = np.where(accepted & (rng.random(n) < 0.93), rng.gamma(1.2, 200.0, n), 0.0)
    return pd.DataFrame(
        {
            "reports": rng.poisson(np.where(accepted, 0.15, 1.5)),
            "age": rng.normal(33.0, 10.0, n).round(1),
            "income": income.round(3),
            "share": (expenditure / (income * 10_000 / 12) + 0.0002 * rng.random(n)).round(6),
            "expenditure": expenditure.round(2),
            "owner": rng.random(n) < np.where(accepted, 0.47, 0.3),
            "dependents": rng.poisson(1.0, n),
            "months": rng.gamma(2.0, 28.0, n).round(),
            "active": rng.poisson(np.where(accepted, 7.0, 6.0)),
            "card": np.where(accepted, "yes", "no"),
        }
    )


def diamonds(n: int = 6000, seed: int = 0, zero_sizes: int = 12) -> pd.DataFrame:
    """Prices of diamonds from their carat, cut, colour, clarity and sizes x/y/z (mm, about the cube root of the
    carat), as in the well-known table; `zero_sizes` rows have their sizes recorded as 0 (bad data, as there)."""
    rng = np.random.default_rng(seed)
    carat = (rng.gamma(2.2, 0.33, n) + 0.2).round(2)
    cuts, colours, clarities = ["Fair", "Good", "Very Good", "Premium", "Ideal"], list("DEFGHIJ"), ["I1", "SI2",
        "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"]  # fmt: skip
    cut = rng.choice(len(cuts), n, p=[0.03, 0.09, 0.22, 0.26, 0.40])
    colour = rng.choice(len(colours), n)
    clarity = rng.choice(len(clarities), n, p=[0.02, 0.17, 0.24, 0.23, 0.15, 0.09, 0.07, 0.03])
    x = (6.45 * carat ** (1 / 3) * rng.normal(1.0, 0.01, n)).round(2)
    log_price = 8.45 + 1.75 * np.log(carat) + 0.04 * cut - 0.07 * colour + 0.09 * clarity + rng.normal(0, 0.12, n)
    frame = pd.DataFrame(
        {
            "carat": carat,
            "cut": np.array(cuts)[cut],
            "color": np.array(colours)[colour],
            "clarity": np.array(clarities)[clarity],
            "depth": rng.normal(61.7, 1.4, n).round(1),
            "table": rng.normal(57.4, 2.2, n).round(0),
            "x": x,
            "y": (x * rng.normal(1.0, 0.005, n)).round(2),
            "z": (x * 0.617 * rng.normal(1.0, 0.01, n)).round(2),
            "price": np.minimum(np.exp(log_price), 18_823).round(),
        }
    )
    bad = rng.choice(n, zero_sizes, replace=False)
    frame.loc[bad, ["x", "y", "z"]] = 0.0
    return frame
