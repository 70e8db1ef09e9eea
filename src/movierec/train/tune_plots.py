"""The two figures of a tuning study: optimisation history and parameter importances (PNG, drawn offline)."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import optuna
from matplotlib.ticker import MaxNLocator
from optuna.trial import TrialState

from movierec import atomic


def plot_history(study: optuna.Study, path: Path) -> Path:
    """Each completed trial's validation RMSE, pruned trials at their last reported epoch, and the best so far."""
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    pruned = [t for t in trials if t.state == TrialState.PRUNED and t.intermediate_values]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    if pruned:
        ax.scatter(
            [t.number for t in pruned],
            [t.intermediate_values[max(t.intermediate_values)] for t in pruned],
            marker="x",
            color="grey",
            label="pruned (last epoch reported)",
        )
    ax.scatter([t.number for t in done], [float(t.value or 0.0) for t in done], color="C0", label="completed")
    best_numbers, best_values, best = [], [], float("inf")
    for trial in done:
        best = min(best, float(trial.value or best))
        best_numbers.append(trial.number)
        best_values.append(best)
    ax.step(best_numbers, best_values, where="post", color="C3", label="best so far")
    if best_values:
        low = best_values[-1]
        span = min(max(float(t.value or low) for t in done), low * 1.25) - low  # outliers leave the frame
        pad = 0.05 * span + 1e-3
        ax.set_ylim(low - pad, low + span + pad)
    ax.set_title(f"Optimisation history: {study.study_name} ({len(done)} completed, {len(pruned)} pruned)")
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("best validation RMSE (stars)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_importances(study: optuna.Study, path: Path) -> Path:
    """How much each searched setting explains of the validation RMSE (Optuna's default importance evaluator)."""
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    importances = _importances(study)
    if importances:
        names = list(importances)[::-1]
        ax.barh(names, [importances[name] for name in names], color="C0")
        ax.set_xlabel("importance (share of the whole)")
        ax.grid(alpha=0.3, axis="x")
    else:
        ax.text(0.5, 0.5, "Importances need at least two completed trials\nthat differ.", ha="center", va="center")
        ax.set_axis_off()
    done = sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))
    ax.set_title(f"Parameter importances: {study.study_name} (from {done} completed trials)")
    return _save(fig, path)


def _importances(study: optuna.Study) -> dict[str, float]:
    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if len(done) < 2 or len({t.value for t in done}) < 2:
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return optuna.importance.get_param_importances(study)
        except (ValueError, RuntimeError):
            return {}


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    with atomic.atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
