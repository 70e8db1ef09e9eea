"""A checkpoint keeps the best epoch's weights apart only when they are not the module's own: read back, the best
weights are the module's when its epoch is the best, and the older ones when a later epoch was worse."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from movierec.config import TrainConfig
from movierec.train import checkpoint
from movierec.train.checkpoint import CHECKPOINT_NAME, NoOptimizer, TrainingState


def record(state: TrainingState, module: nn.Module, epoch: int, val_rmse: float) -> None:
    state.record({"epoch": float(epoch)}, val_rmse, module)


def test_the_best_weights_are_stored_apart_only_when_a_later_epoch_was_worse(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module, config = nn.Linear(4, 3), TrainConfig(model="biased-mf", dim=4)
    state = TrainingState()
    record(state, module, 1, 0.9)
    checkpoint.save(tmp_path, module, NoOptimizer(), config, state)
    assert not any(key.startswith("best.") for key in load_file(tmp_path / CHECKPOINT_NAME))
    restored = checkpoint.load(tmp_path, nn.Linear(4, 3), NoOptimizer(), config)
    assert restored.best_epoch == 1 and restored.best_state is not None
    assert all(torch.equal(restored.best_state[k], v) for k, v in module.state_dict().items())

    best = {k: v.clone() for k, v in module.state_dict().items()}
    with torch.no_grad():
        module.weight.add_(1.0)  # epoch 2 moves the weights and validates worse
    record(state, module, 2, 0.95)
    checkpoint.save(tmp_path, module, NoOptimizer(), config, state)
    assert any(key.startswith("best.") for key in load_file(tmp_path / CHECKPOINT_NAME))
    fresh = nn.Linear(4, 3)
    restored = checkpoint.load(tmp_path, fresh, NoOptimizer(), config)
    assert (restored.epoch, restored.best_epoch) == (2, 1) and restored.best_state is not None
    assert all(torch.equal(restored.best_state[k], v) for k, v in best.items())
    assert torch.equal(fresh.weight, module.weight)  # the module resumes from its last weights, not the best
