"""Stage 7: the run's report, under `report/` in the MLflow run: feature importance (JSON and a chart, in the
table's column names) and the standard evaluation plots of the problem type, all on the test rows the search never
saw. Charts are drawn by matplotlib and scikit-learn's metric displays.

Importance is permutation importance for every algorithm (how much the job's objective worsens on the test rows
when one column's values are shuffled; for an anomaly job without a label, how much the scores move), plus the
library's own gain importance for LightGBM and XGBoost.

The report shares the job's budget: it gets what is left of it after the model is registered. Permutation importance
scores fewer test rows (down to MIN_ROWS), then fewer columns (the most gain first), to fit that time, and the
evaluation charts are drawn only when DRAWING_SECONDS of it remain; what was left out is said in the JSON.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from automl_trainer.algorithms.base import Algorithm, Context
from automl_trainer.evaluate import OBJECTIVES, evaluate
from automl_trainer.prepare import Data
from automl_trainer.serving import Meta, class_columns

MAX_ROWS = 5000  # permutation importance on at most this many test rows
MIN_ROWS = 500  # ... and on fewer only to fit its time (a slow model, little of the budget left)
PERMUTATION_SECONDS = 60.0  # no repeat starts that would end after this long
DRAWING_SECONDS = 3.0  # what the evaluation charts and their upload take (kept out of permutation importance's time)
IMPORTANCE_SECONDS = 1.0  # what the importance JSON and chart and their upload take
REPEATS = 3
TOP = 25  # columns drawn in the chart


def permutation_importance(
    algo: Algorithm,
    model: Any,
    ctx: Context,
    test: Data,
    seconds: float = PERMUTATION_SECONDS,
    first: list[str] | None = None,
) -> dict[str, Any]:
    """Drops of the objective per column, within `seconds`: every column once, more repeats while they fit. When
    one repeat over every column would not fit even on MIN_ROWS rows, the columns it reaches are scored, in the
    order of `first` (then the rest), and the others get no drop."""
    rng = np.random.default_rng(ctx.seed)
    data = test
    if len(test) > MAX_ROWS and test.group is None:
        data = test.take(np.sort(rng.choice(len(test), MAX_ROWS, replace=False)))
    objective, direction = OBJECTIVES[ctx.problem]
    supervised = not (ctx.problem == "anomaly_detection" and data.y is None)
    timed = time.monotonic()
    base_scores = algo.predict(model, data, ctx)
    one_call = time.monotonic() - timed
    # One repeat scores every column once: fewer rows when that would not fit the time (the job's budget).
    fits = int(len(data) * max(seconds, 0.0) / max(one_call * len(ctx.keys), 1e-9))
    if fits < len(data) and len(data) > MIN_ROWS and data.group is None:
        data = data.take(np.sort(rng.choice(len(data), max(MIN_ROWS, fits), replace=False)))
        timed = time.monotonic()
        base_scores = algo.predict(model, data, ctx)
        one_call = time.monotonic() - timed
    ranked = [key for key in first or [] if key in ctx.keys]
    keys = ranked + [key for key in ctx.keys if key not in ranked]
    base = evaluate(ctx.problem, data, base_scores).get(objective) if supervised else None
    if supervised and (base is None or not np.isfinite(base)):
        supervised = False  # e.g. one class among the test rows: fall back to how much the scores move
    sign = 1.0 if direction == "maximize" else -1.0
    drops: dict[str, list[float]] = {key: [] for key in ctx.keys}
    started = time.monotonic()
    for repeat in range(REPEATS):
        elapsed = time.monotonic() - started
        if repeat and elapsed * (repeat + 1) / repeat > seconds:  # another repeat would end past its time
            break
        for key in keys:
            if time.monotonic() - started + one_call > seconds and (repeat or key != keys[0] or seconds <= 0):
                break  # this column's scoring would end past the time (the first column is scored if any time is)
            shuffled = data.X.copy()
            shuffled[key] = rng.permutation(shuffled[key].to_numpy())
            permuted = Data(
                X=shuffled,
                y=data.y,
                group=data.group,
                action=data.action,
                reward=data.reward,
                propensity=data.propensity,
            )
            scores = algo.predict(model, permuted, ctx)
            if supervised:
                value = evaluate(ctx.problem, permuted, scores).get(objective, float("nan"))
                drops[key].append(sign * (float(base) - float(value)))  # type: ignore[arg-type]
            else:
                drops[key].append(float(np.mean(np.abs(np.asarray(scores) - np.asarray(base_scores)))))
    scored = [v for v in drops.values() if v]
    return {
        "method": "permutation",
        "measure": f"decrease of {objective} on the test rows" if supervised else "mean absolute change of the score",
        "rows": len(data),
        "repeats": min(len(v) for v in scored) if scored else 0,
        "columns_scored": len(scored),
        "drops": drops,
    }


def feature_importance(
    algo: Algorithm, model: Any, ctx: Context, test: Data, seconds: float = PERMUTATION_SECONDS
) -> dict[str, Any]:
    features = ctx.preprocessing.features
    gains = algo.native_importance(model, ctx)
    first = sorted(gains, key=lambda key: -gains[key]) if gains else None
    permutation = permutation_importance(algo, model, ctx, test, seconds, first)
    total_gain = sum(gains.values()) if gains else 0.0
    rows = []
    for column in features.columns:
        drops = permutation["drops"][column.key]
        row: dict[str, Any] = {
            "column": column.name,
            "permutation_mean": float(np.mean(drops)) if drops else None,
            "permutation_std": float(np.std(drops)) if drops else None,
        }
        if gains is not None:
            row["gain_share"] = gains.get(column.key, 0.0) / total_gain if total_gain > 0 else 0.0
        rows.append(row)
    rows.sort(key=lambda r: -(r["permutation_mean"] or 0.0))
    return {
        "method": permutation["method"],
        "measure": permutation["measure"],
        "rows": permutation["rows"],
        "repeats": permutation["repeats"],
        "columns_scored": permutation["columns_scored"],
        "gain": "share of the library's total split gain" if gains is not None else None,
        "features": rows,
    }


def _figure(width: float = 6.4, height: float = 4.8) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def importance_chart(importance: dict[str, Any]) -> Any:
    rows = importance["features"][:TOP][::-1]
    has_gain = importance["gain"] is not None
    fig = _figure(10 if has_gain else 7, max(2.5, 0.35 * len(rows) + 1.2))
    axes = fig.subplots(1, 2 if has_gain else 1, sharey=True, squeeze=False)[0]
    names = [_short(r["column"]) for r in rows]
    axes[0].barh(names, [r["permutation_mean"] or 0.0 for r in rows], xerr=[r["permutation_std"] or 0.0 for r in rows])
    axes[0].set_title(f"Permutation importance\n({importance['measure']})", fontsize=9)
    axes[0].axvline(0.0, color="grey", linewidth=0.8)
    if has_gain:
        axes[1].barh(names, [r["gain_share"] for r in rows], color="tab:orange")
        axes[1].set_title("Gain share (library's own)", fontsize=9)
    return fig


def _short(name: str, width: int = 40) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def evaluation_figures(ctx: Context, test: Data, scores: np.ndarray, meta: Meta) -> dict[str, Any]:
    """File name → figure, per problem type."""
    from sklearn.metrics import (
        ConfusionMatrixDisplay,
        PrecisionRecallDisplay,
        PredictionErrorDisplay,
        RocCurveDisplay,
    )

    problem = ctx.problem
    figures: dict[str, Any] = {}
    if problem in ("binary_classification", "multiclass_classification"):
        assert test.y is not None
        classes = [str(c) for c in meta.classes or []]
        proba = class_columns(scores)
        threshold = (meta.extra.get("guard") or {}).get("threshold")
        if problem == "binary_classification" and threshold is not None:  # the labels the model gives
            predicted = (proba[:, 1] >= float(threshold)).astype(np.int64)
        else:
            predicted = proba.argmax(axis=1)
        fig = _figure(max(5.0, 0.6 * len(classes) + 3), max(4.0, 0.6 * len(classes) + 2))
        ax = fig.subplots()
        ConfusionMatrixDisplay.from_predictions(
            test.y,
            predicted,
            labels=list(range(len(classes))),
            display_labels=[_short(c, 16) for c in classes],
            ax=ax,
            colorbar=False,
            xticks_rotation="vertical" if len(classes) > 4 else "horizontal",
        )
        ax.set_title("Confusion matrix (test rows)")
        figures["confusion_matrix.png"] = fig
        shown = range(len(classes)) if len(classes) > 2 else [1]
        roc, pr = _figure(), _figure()
        roc_ax, pr_ax = roc.subplots(), pr.subplots()
        for k in list(shown)[:10]:
            truth = (test.y == k).astype(int)
            if truth.min() == truth.max():
                continue
            name = _short(classes[k], 24) + ("" if len(classes) > 2 else " (positive)")
            RocCurveDisplay.from_predictions(truth, proba[:, k], name=name, ax=roc_ax)
            PrecisionRecallDisplay.from_predictions(truth, proba[:, k], name=name, ax=pr_ax)
        roc_ax.set_title("ROC curve (test rows)")
        pr_ax.set_title("Precision-recall curve (test rows)")
        figures["roc_curve.png"], figures["pr_curve.png"] = roc, pr
    elif problem == "regression":
        assert test.y is not None
        for kind, name, title in (
            ("actual_vs_predicted", "predicted_vs_actual.png", "Actual vs predicted (test rows)"),
            ("residual_vs_predicted", "residuals.png", "Residuals vs predicted (test rows)"),
        ):
            fig = _figure()
            ax = fig.subplots()
            PredictionErrorDisplay.from_predictions(test.y, scores, kind=kind, ax=ax, subsample=2000, random_state=0)
            ax.set_title(title)
            figures[name] = fig
    elif problem == "ranking":
        assert test.y is not None
        grades = sorted(np.unique(test.y).tolist())
        fig = _figure()
        ax = fig.subplots()
        ax.boxplot([scores[test.y == g] for g in grades], tick_labels=[str(g) for g in grades])
        ax.set_xlabel("relevance grade")
        ax.set_ylabel("model score")
        ax.set_title("Scores by relevance grade (test rows)")
        figures["score_by_relevance.png"] = fig
    elif problem == "anomaly_detection":
        fig = _figure()
        ax = fig.subplots()
        if test.y is not None and len(np.unique(test.y)) == 2:
            ax.hist(
                [scores[test.y == 0], scores[test.y == 1]],
                bins=40,
                label=["normal (label)", "anomaly (label)"],
                stacked=True,
            )
            ax.legend()
            roc, pr = _figure(), _figure()
            RocCurveDisplay.from_predictions(test.y, scores, name="anomaly score", ax=roc.subplots())
            PrecisionRecallDisplay.from_predictions(test.y, scores, name="anomaly score", ax=pr.subplots())
            figures["roc_curve.png"], figures["pr_curve.png"] = roc, pr
        else:
            ax.hist(scores, bins=40)
        threshold = meta.extra.get("threshold")
        if threshold is not None:
            ax.axvline(float(threshold), color="red", linestyle="--", label="anomaly threshold")
        ax.set_xlabel("anomaly score (higher = more abnormal)")
        ax.set_title("Anomaly scores (test rows)")
        figures["score_distribution.png"] = fig
    elif problem == "contextual_bandit":
        assert test.action is not None
        actions = [_short(str(a), 16) for a in meta.actions or []]
        chosen = np.bincount(scores.argmax(axis=1), minlength=len(actions)) / len(scores)
        logged = np.bincount(test.action, minlength=len(actions)) / len(test.action)
        fig = _figure()
        ax = fig.subplots()
        x = np.arange(len(actions))
        ax.bar(x - 0.2, logged, width=0.4, label="logged policy")
        ax.bar(x + 0.2, chosen, width=0.4, label="learned policy")
        ax.set_xticks(x, actions)
        ax.set_ylabel("share of test rows")
        ax.legend()
        ax.set_title("Actions chosen (test rows)")
        figures["policy_actions.png"] = fig
    return figures


def log_report(
    algo: Algorithm,
    model: Any,
    ctx: Context,
    test: Data,
    scores: np.ndarray,
    meta: Meta,
    seconds: float = PERMUTATION_SECONDS + DRAWING_SECONDS,
) -> list[str]:
    """Log report/feature_importance.{json,png} and, time allowing, the evaluation plots; returns the artifact paths.
    `seconds`: the report's time (what is left of the job's budget). The importance JSON is always written (the
    library's gain alone when no time is left); IMPORTANCE_SECONDS are kept for it and its chart, the chart is
    drawn when they remain. Permutation importance gets the rest less DRAWING_SECONDS (at most
    PERMUTATION_SECONDS) and the evaluation charts are drawn if DRAWING_SECONDS remain; with less than twice
    DRAWING_SECONDS, permutation importance gets it all and the evaluation charts are left out."""
    import mlflow

    end = time.monotonic() + seconds
    spare = seconds - IMPORTANCE_SECONDS  # for permutation importance and the evaluation charts
    permutation = spare - DRAWING_SECONDS if spare >= 2 * DRAWING_SECONDS else spare
    importance = feature_importance(algo, model, ctx, test, min(PERMUTATION_SECONDS, permutation))
    draw = permutation < spare and end - time.monotonic() >= DRAWING_SECONDS + IMPORTANCE_SECONDS
    importance["evaluation_charts"] = "drawn" if draw else "left out: the job's time budget was spent"
    mlflow.log_dict(importance, "report/feature_importance.json")
    logged = ["report/feature_importance.json"]
    figures = {"feature_importance.png": importance_chart(importance)} if end - time.monotonic() > 0 else {}
    if draw:
        figures.update(evaluation_figures(ctx, test, scores, meta))
    for name, fig in figures.items():
        mlflow.log_figure(fig, f"report/{name}")
        logged.append(f"report/{name}")
    return logged
