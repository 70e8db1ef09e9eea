"""The training configuration: typed, validated on creation, saved in every run folder.

CLI flags map one to one onto these fields: each field's docstring is its ``--help`` and the values it accepts
are declared beside it (``movierec.checks``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from movierec.checks import check_fields, non_negative, one_of, valid, whole, within
from movierec.errors import MovieRecError

OPTIMIZERS = ("adam", "sgd", "sparse-adam", "adagrad")
SCHEDULES = ("none", "cosine", "step")
DEVICES = ("auto", "cpu", "cuda", "mps")
SOLVERS = ("loop", "als", "gibbs")
Optimizer = Literal["adam", "sgd", "sparse-adam", "adagrad"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a run. Defaults are the tuned ones for ml-latest-small."""

    model: str = "biased-mf"
    """Which model to train.

    ``movierec.models.registry`` lists the models and checks the name. A bare ``TrainConfig()`` holds the field
    defaults; ``registry.config_for()`` gives the shipped defaults of the default model."""
    dim: int = valid(64, whole(1, 4096))
    """Embedding size (factors per user and per movie)."""
    epochs: int = valid(40, whole(1, 10_000))
    """Most epochs to train; early stopping usually ends sooner."""
    lr: float = valid(0.005, within(lambda lr: 0 < lr <= 10, "a learning rate in (0, 10], e.g. 0.005"))
    """Learning rate."""
    reg: float = valid(0.1, non_negative)
    """L2 penalty on the rows each batch touches, added to the loss (the ALS hybrid: the strongest ridge of its path
    from a quarter of it, chosen on validation)."""
    weight_decay: float = valid(0.0, non_negative)
    """Optimiser-wide weight decay: shrinks every row at every step, touched or not."""
    batch_size: int = valid(1024, whole(1, 10_000_000))
    """Ratings per mini-batch."""
    optimizer: str = valid("adam", one_of(OPTIMIZERS))
    """adam, sgd, sparse-adam or adagrad."""
    schedule: str = valid("none", one_of(SCHEDULES))
    """Learning-rate schedule: none, cosine or step (halve every 10 epochs)."""
    patience: int = valid(3, whole(1, 1000))
    """Epochs without a better validation RMSE before stopping; the best epoch is restored."""
    val_fraction: float = valid(0.05, within(lambda share: 0 < share < 0.5, "a value in (0, 0.5)"))
    """Share of the training ratings carved out for validation (the test set never chooses anything)."""
    init_std: float = valid(0.05, non_negative)
    """Standard deviation of the initial factors."""
    fold_in_reg: float = valid(1.0, non_negative)
    """Noise variance of a new user's ratings against the trained users' Gaussian prior when folding in (smaller
    trusts the few ratings more); a ridge penalty where a model has no such prior."""
    # Chosen on validation users only (benchmarks/coldstart_table.py's protocol on a disjoint 20% of the training
    # users of user-holdout seeds 0, 1, 2, k = 5, 10, 20 by time and at random): mean fold-in RMSE over those 18
    # cells, hybrid (loop) at 0.6 / 0.8 / 1.0 / 1.2 / 1.5 / 2.0: 0.9071 / 0.9058 / 0.9058 / 0.9062 / 0.9074 /
    # 0.9098, hybrid --solver gibbs 0.9014 / 0.8992 / 0.8986 / 0.8986 / 0.8994 / 0.9015 (bias-only 0.9216). Larger
    # than the residual variance on training ratings (0.36 loop, 0.27 gibbs), which fitted the movie side.
    seed: int = 0
    """Seed for initialisation, shuffling and the validation split."""
    device: str = valid("auto", one_of(DEVICES))
    """auto, cpu, cuda or mps; auto picks CUDA when present."""
    solver: str = valid("loop", one_of(SOLVERS))
    """loop (gradient steps, --optimizer), als (fast alternating least squares, for some models) or gibbs (Bayesian:
    block Gibbs sampling, predictions averaged over posterior samples; biased-mf and hybrid)."""
    als_cg_steps: int = valid(3, whole(0, 50))
    """als: conjugate gradient steps per row and half-sweep, warm-started from the previous sweep; 0 solves every
    row exactly (a Cholesky factorisation of its Gram matrix, about ``dim`` times the work)."""
    watch_dim: int = valid(128, whole(0, 1024))
    """Size of the "likely to watch" component of the ranking score (implicit ALS); 0 turns it off."""
    watch_reg: float = valid(10.0, non_negative)
    """Ridge penalty of the "likely to watch" component."""
    watch_unobserved: float = valid(1.0, non_negative)
    """Weight of the movies a user did not rate in the "likely to watch" component."""
    watch_iterations: int = valid(6, whole(1, 100))
    """Alternating sweeps of the "likely to watch" component. 6, not 8 since its rows are solved by preconditioned CG
    (``train.watch_cg``): on validation data (ml-latest-small, split seed 0's training ratings with 10% held out, 6
    seeds) 8 sweeps score NDCG@10 / coverage@10 biased-mf 0.1984 / 0.0513 and hybrid 0.2003 / 0.0590, 6 sweeps
    0.1986 / 0.0511 and 0.1988 / 0.0576, 5 sweeps 0.2001 / 0.0521 and 0.1994 / 0.0570 (seed-to-seed noise about
    0.005; the former 8 sweeps of unpreconditioned CG 0.1961 / 0.0516 and 0.1981 / 0.0579)."""
    watch_dislike: float = valid(-0.5, within(lambda target: -10 <= target <= 1, "a value in [-10, 1]"))
    """Target of a disliked movie in a person's "likely to watch" vector (a liked one has 1): negative pushes the
    movies watched alike down; 1 ignores the stars."""
    watch_margin: float = valid(1.0, non_negative)
    """Stars below a person's own mean rating (shrunk towards everyone's) at which a rating counts as disliked."""
    use_genres: bool = True
    """hybrid: add learned genre and release-year embeddings to each movie."""
    use_tags: bool = True
    """hybrid: add learned embeddings of user tags to each movie (when the data has tags)."""
    use_implicit: bool = True
    """hybrid: add the SVD++ term, a normalised sum over the movies the user rated (left out by ``--solver als``
    and by sharded training); under ``--solver gibbs`` myFM's flipped block instead, a normalised sum over the users
    who rated each movie (``train/gibbs_implicit.py``)."""
    use_time: bool = False
    """gibbs: add time effects (a movie bias per time bin, a drifting user bias); a prediction without a date is
    the model at the latest training date."""
    distributed: bool = False
    """Train across the processes torchrun starts (DistributedDataParallel, each rank on its shard;
    docs/distributed.md)."""
    shards: str | None = None
    """A shard folder (``movierec data shard``) to train on instead of --data: sharded ALS (--solver als, biased-mf
    or hybrid), each torchrun process reading only its parts with --distributed, or this process alone without
    (docs/distributed.md)."""
    gibbs_burn_in: int = valid(50, whole(0, 100_000))
    """gibbs: sweeps drawn before the first kept sample (they are not averaged); fewer than --epochs."""
    gibbs_thin: int = valid(1, whole(1, 1000))
    """gibbs: keep every n-th sweep after the burn-in; predictions average the kept samples."""
    gibbs_stored: int = valid(0, whole(0, 1000))
    """gibbs: 0 stores the posterior mean vectors for serving; n > 0 stores n kept samples, evenly spaced, side by
    side (n times the width; their average is the predictor)."""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.shards is not None and (
            self.solver not in ("als", "gibbs") or self.model not in ("biased-mf", "hybrid")
        ):
            raise MovieRecError(
                f"--shards trains --model biased-mf or hybrid with --solver als or gibbs, not {self.model!r} with "
                f"{self.solver!r}; give --model biased-mf or hybrid and --solver als or gibbs, or drop --shards."
            )
        if self.shards is not None and self.solver == "gibbs" and self.use_time:
            raise MovieRecError("--shards with --solver gibbs does not sample --use-time; drop it or drop --shards.")
        if self.use_time and self.solver != "gibbs":
            raise MovieRecError(
                f"--use-time adds time effects to --solver gibbs only, not {self.solver!r}; "
                "give --solver gibbs or drop --use-time."
            )
        if self.distributed and self.solver != "loop" and self.shards is None:
            raise MovieRecError(
                f"--distributed trains with --solver loop, not {self.solver!r}; use --solver loop "
                "(or --solver als with --shards)."
            )
        if self.distributed and self.optimizer == "sparse-adam":
            raise MovieRecError("--distributed cannot be used with --optimizer sparse-adam; use adam instead.")
        if self.optimizer == "sparse-adam" and self.weight_decay:
            raise MovieRecError("--weight-decay cannot be used with --optimizer sparse-adam; use adam instead.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        if not isinstance(values, dict):
            raise MovieRecError(f"{source} must hold a JSON object of settings, not {type(values).__name__}.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise MovieRecError(f"{source} has unknown setting(s) {unknown}; valid settings are {sorted(known)}.")
        return cls(**values)

    @classmethod
    def from_file(cls, path: Path) -> TrainConfig:
        if path.is_dir():
            raise MovieRecError(f"The config file {path} is a folder; give the path of a JSON file.")
        if not path.is_file():
            raise MovieRecError(f"The config file {path} does not exist.")
        try:
            values = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MovieRecError(f"The config file {path} is not valid JSON ({exc.args[0]}).") from None
        if not isinstance(values, dict):
            raise MovieRecError(f"The config file {path} must hold a JSON object of settings.")
        values = values.get("train", values)
        return cls.from_dict(values, source=str(path))

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
