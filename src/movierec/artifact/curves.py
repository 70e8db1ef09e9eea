"""The learning-curve figure of one run: train and validation RMSE by epoch."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from movierec import atomic


def plot_learning_curve(history: list[dict[str, float]], path: Path, title: str = "Learning curve") -> Path:
    epochs = [row["epoch"] for row in history]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ax.plot(epochs, [row["train_rmse"] for row in history], marker="o", label="train RMSE")
    ax.plot(epochs, [row["val_rmse"] for row in history], marker="o", label="validation RMSE")
    best = min(history, key=lambda row: row["val_rmse"])
    ax.axvline(best["epoch"], color="grey", linestyle="--", linewidth=1, label=f"best epoch ({int(best['epoch'])})")
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel("RMSE (stars)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic.atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
