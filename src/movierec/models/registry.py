"""The model registry: every model's name, help text, builder, solvers, defaults and search space, in one place.

The CLI's choices and help, ``movierec tune``'s search space, the training driver and the shipped defaults all
read this table, so adding a model is one module in ``models/`` and one ``register`` call. Listing the models
never imports torch: each builder imports its module when it is called.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from movierec.checks import one_of
from movierec.config import SOLVERS, TrainConfig
from movierec.data.ratings import Dataset, Ratings, RatingScale
from movierec.errors import MovieRecError
from movierec.models.factors import FactorParams

if TYPE_CHECKING:
    from torch import nn

ModuleBuilder = Callable[[TrainConfig, Dataset, Ratings], "nn.Module"]
"""A fresh, untrained ``nn.Module`` for the config, sized to the training ratings' vocabularies."""
ClosedForm = Callable[[Ratings, RatingScale], FactorParams]
"""A model fitted in closed form, straight to its exported parameters."""

Kind = Literal["int", "float", "choice"]


@dataclass(frozen=True)
class Param:
    """One searched ``TrainConfig`` field: an int or float range (optionally log-scaled) or a list of choices."""

    name: str
    kind: Kind
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: int = 1
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """Draw this field from an optuna trial."""
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=self.step, log=self.log)
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log)
        return trial.suggest_categorical(self.name, list(self.choices))

    def nearest(self, value: Any) -> Any:
        """The value in this range closest to ``value`` (None for a choice it does not offer)."""
        if self.kind == "choice":
            return value if value in self.choices else None
        clipped = min(max(float(value), self.low), self.high)
        if self.kind == "float":
            return clipped
        steps = round((clipped - self.low) / self.step)
        return int(self.low) + self.step * min(steps, math.floor((self.high - self.low) / self.step))


@dataclass(frozen=True)
class ModelSpec:
    """One model as the rest of movierec knows it."""

    name: str
    help: str
    """One line for ``--help`` and the docs."""
    build: ModuleBuilder | None = None
    """Builds the trainable module; None for a model fitted in closed form."""
    closed_form: ClosedForm | None = None
    """Fits the model in closed form; None for a trained model."""
    solvers: tuple[str, ...] = ("loop",)
    """The solvers that can train it (``TrainConfig.solver``)."""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    """Settings that differ from ``TrainConfig``'s field defaults for this model."""
    solver_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """... and for this model under one solver, on top of ``defaults``."""
    search_space: tuple[Param, ...] = ()
    """What ``movierec tune`` may change; empty for a model that cannot be tuned."""

    def __post_init__(self) -> None:
        if (self.build is None) == (self.closed_form is None):
            raise ValueError(f"model {self.name!r} needs exactly one of a module builder and a closed form")
        known = {f.name for f in fields(TrainConfig)}
        named = [*self.defaults, *(k for values in self.solver_defaults.values() for k in values)]
        unknown = sorted({n for n in [*named, *(p.name for p in self.search_space)] if n not in known})
        if unknown:
            raise ValueError(f"model {self.name!r} names unknown settings {unknown}")

    @property
    def trained(self) -> bool:
        """Trained by a solver (as opposed to fitted in closed form)."""
        return self.build is not None

    def config(self, **overrides: Any) -> TrainConfig:
        """The shipped defaults of this model under ``overrides["solver"]`` (default loop), overrides on top.

        A shipped burn-in is never all of the sweeps: with ``epochs`` given at or below it, half of them are burnt.
        """
        given = {k: v for k, v in overrides.items() if v is not None}
        values = {**self.defaults, **self.solver_defaults.get(given.get("solver", "loop"), {}), **given}
        if "gibbs_burn_in" in values and "gibbs_burn_in" not in given and values["gibbs_burn_in"] >= values["epochs"]:
            values["gibbs_burn_in"] = values["epochs"] // 2
        return TrainConfig(model=self.name, **values)


_REGISTRY: dict[str, ModelSpec] = {}
DEFAULT_MODEL = "hybrid"  # the most accurate on held-out data (benchmarks/accuracy.py, benchmarks/accuracy_hybrid.py)


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (an error if its name is taken); returns it."""
    if spec.name in _REGISTRY:
        raise ValueError(f"a model named {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a model (for tests that register their own)."""
    _REGISTRY.pop(name, None)


def names() -> tuple[str, ...]:
    """Every registered model, in registration order."""
    return tuple(_REGISTRY)


def trained_names() -> tuple[str, ...]:
    """The models trained by a solver."""
    return tuple(name for name, spec in _REGISTRY.items() if spec.trained)


def tunable_names() -> tuple[str, ...]:
    """The models with a search space."""
    return tuple(name for name, spec in _REGISTRY.items() if spec.search_space)


def get(name: str) -> ModelSpec:
    """The spec of ``name``; one sentence naming the valid models for any other name."""
    spec = _REGISTRY.get(name)
    if spec is None:
        raise MovieRecError(f"--model {name!r} is not valid; choose one of: {', '.join(_REGISTRY)}.")
    return spec


def config_for(model: str | None = None, **overrides: Any) -> TrainConfig:
    """The shipped defaults of ``model`` (default: the default model), with ``overrides`` on top."""
    return get(model or DEFAULT_MODEL).config(**overrides)


GIBBS_UP_TO = 2_000_000
"""``--solver auto`` samples (gibbs) on data of up to this many ratings, and solves by ALS on more. Gibbs is the
most accurate (benchmarks/bayes.py: hybrid 0.7970 against 0.8164 by the loop and 0.8142 by ALS on ml-latest-small;
ALS 0.8136 since its ridge path, benchmarks/accuracy.py)
and costs 150 sweeps of about two ALS epochs each (benchmarks/train_speed.py --gibbs at 25M ratings, dim 64, two
cores: 4.1-4.4 s a sweep against 1.9-2.2 s an epoch): about a minute at this size (ML-1M has 1.0M ratings), over
ten minutes at ML-25M size, where ALS's 9 epochs take under half a minute."""


def auto_solver(settings: Mapping[str, Any], ratings: Callable[[], int]) -> str:
    """What ``--solver auto`` trains ``settings["model"]`` (default: the default model) with: gibbs on data of up to
    ``GIBBS_UP_TO`` ratings (``ratings()``, counted only if it matters) or with ``use_time``, else als, for the
    models that have them; loop for the others and for ``distributed`` without ``shards``; als for ``shards``."""
    solvers = get(settings.get("model") or DEFAULT_MODEL).solvers
    sharded = settings.get("shards") is not None
    if (settings.get("distributed") and not sharded) or solvers == ("loop",):
        return "loop"
    if "gibbs" in solvers and not sharded and (settings.get("use_time") or ratings() <= GIBBS_UP_TO):
        return "gibbs"
    return "als" if "als" in solvers else solvers[0]


def chosen_solver(settings: Mapping[str, Any], ratings: Callable[[], int] | None) -> str:
    """The solver ``settings["solver"]`` names, checked (``auto`` or left out: ``auto_solver``'s choice for data of
    ``ratings()`` ratings, or the loop where no data are given to size it)."""
    solver = settings.get("solver") or "auto"
    one_of(("auto", *SOLVERS))("--solver", solver)
    if solver != "auto":
        return str(solver)
    return "loop" if ratings is None else auto_solver(settings, ratings)


def config_for_data(model: str | None, ratings: Callable[[], int], **overrides: Any) -> TrainConfig:
    """``config_for`` with ``solver`` left out or ``"auto"`` chosen by ``auto_solver`` for data of ``ratings()``
    ratings: what ``movierec train`` trains by default."""
    return config_for(model, **{**overrides, "solver": chosen_solver({**overrides, "model": model}, ratings)})


def trained_by(solver: str) -> tuple[str, ...]:
    """The models ``solver`` can train."""
    return tuple(name for name, spec in _REGISTRY.items() if spec.trained and solver in spec.solvers)


def check(config: TrainConfig) -> TrainConfig:
    """``config`` if the registry can train it: a known model under one of its solvers; else one sentence."""
    spec = get(config.model)
    if spec.trained and config.solver not in spec.solvers:
        raise MovieRecError(
            f"--solver {config.solver} trains {' and '.join(trained_by(config.solver))}, not {config.model!r}; "
            f"use --solver {spec.solvers[0]}."
        )
    return config


def help_text(models: Iterable[str] | None = None) -> str:
    """``name (help)`` for each of ``models`` (default: every model), for the CLI's ``--model`` help."""
    return "; ".join(f"{name} ({get(name).help})" for name in (names() if models is None else models))


# ----------------------------------------------------------------------------------------- the built-in models


def _global_mean(train: Ratings, scale: RatingScale) -> FactorParams:
    from movierec.models.baselines import global_mean_params

    return global_mean_params(train, scale)


def _biases(train: Ratings, scale: RatingScale) -> FactorParams:
    from movierec.models.baselines import bias_params

    return bias_params(train, scale)


def _sigmoid_mf(config: TrainConfig, data: Dataset, train: Ratings) -> nn.Module:
    from movierec.models.mf import SigmoidMF

    return SigmoidMF(train.n_users, train.n_items, config.dim, data.scale.low, data.scale.high, config.init_std)


def _biased_mf(config: TrainConfig, data: Dataset, train: Ratings) -> nn.Module:
    from movierec.models.mf import BiasedMF

    sparse = config.optimizer == "sparse-adam"
    low, high = data.scale.low, data.scale.high
    return BiasedMF(train.n_users, train.n_items, config.dim, low, high, config.init_std, sparse=sparse)


def _hybrid(config: TrainConfig, data: Dataset, train: Ratings) -> nn.Module:
    from movierec.models.hybrid import build_hybrid

    return build_hybrid(config, data, train)


TRAINING = (
    Param("dim", "int", 8, 128, log=True),
    Param("lr", "float", 1e-3, 2e-2, log=True),
    Param("reg", "float", 0.01, 0.5, log=True),
    Param("weight_decay", "float", 1e-7, 1e-4, log=True),
    Param("batch_size", "choice", choices=(512, 1024, 2048)),
    Param("epochs", "int", 10, 50, step=10),
    Param("init_std", "float", 0.005, 0.1, log=True),
)
"""Searched for every trained factor model. Batches below 512 and dims above 128 are left out: slower, not
better. The ranges are centred on what works for MovieLens-sized data and kept to what 2 CPU cores afford."""

GIBBS_DEFAULTS = MappingProxyType(
    {"dim": 16, "epochs": 150, "gibbs_burn_in": 10, "init_std": 0.1, "use_implicit": True, "val_fraction": 0.01}
)
"""The hybrid under ``--solver gibbs``: 150 sweeps from a cold start (``train/gibbs.py``: each sweep draws the
hyperparameters first, so the first priors come from the small initial rows), the first 10 discarded, dim 16, and
for the hybrid myFM's flipped implicit block (``use_implicit``: ``train/gibbs_implicit.py``), chosen on the
validation holdout of ``benchmarks/bayes.py --validation`` (10% of the training ratings of split seeds 0 and 1;
hybrid, mean and per seed) within about twice myFM's time. myFM (rank 10, 200 sweeps) scored 0.8101 (0.8165,
0.8036) there.

The cold start, dim 16 and the flipped block unless said: the mean of the split seeds (per seed) for chain seed 0,
then for chain seed 1; CPU seconds of one fit at one thread on split seed 0 (least of the runs, on a busy machine):

=========================  =======================  =======================  =====
setting                    chain seed 0             chain seed 1             CPU s
=========================  =======================  =======================  =====
250 sweeps, warm (before)  0.8085 (0.8175, 0.7995)  0.8125 (0.8207, 0.8042)  16
250 sweeps                 0.8040 (0.8086, 0.7993)                           15
200 sweeps                 0.8033 (0.8082, 0.7984)                           15
150 sweeps                 0.8030 (0.8083, 0.7977)  0.8012 (0.8095, 0.7928)  10
100 sweeps                 0.8027 (0.8086, 0.7968)  0.8023 (0.8103, 0.7942)  8
dim 24, 150 sweeps         0.8037 (0.8122, 0.7953)                           20
dim 12, 150 sweeps         0.8040 (0.8106, 0.7975)                           8
dim 32, 100 sweeps         (0.8143 on split seed 0)                          20
init_std 0.05, 150 sweeps  0.8043 (0.8113, 0.7972)                           10
init_std 0.2, 150 sweeps   0.8082 (0.8173, 0.7990)                           10
=========================  =======================  =======================  =====

From the cold start the chain's average no longer needs long chains (from 100 to 250 sweeps within 0.001, as one
chain's average moves by 0.002-0.004 with its seed), nor a wider rank; 150 sweeps keep more samples than 100 for
half again its time, and gain 0.0018-0.0114 on the warm chain of 250 sweeps, on both split seeds and both chain
seeds, in 0.6 of its time. How cold the start is matters (``init_std`` sets the first priors' precisions, about
``1/init_std^2``): the posterior is the same, and the gain is where the chain spends its 150 sweeps (a warm chain
had not got there in 600), so the start is a setting like the others, chosen here: 0.1 stays.

Warm, before the flipped block: dim 20 with burn-in 50 0.8171 (0.8258, 0.8083); burn-in 10 0.8145 (0.8230, 0.8060), as
more kept samples average out more noise; dim 32 0.8136 (0.8222, 0.8051); both, with myFM's hyperprior
(``gibbs_draws.ALPHA_0``), 0.8116 (0.8205, 0.8028), the defaults then; 300 sweeps 0.8120 (0.8197, 0.8043) and dim 48
0.8112 (0.8176, 0.8048) no steadier gain for half again the time. Left out of the hybrid's features, years cost
0.0047 (0.8218) and tags 0.0020 (0.8191).

Warm, with and without the flipped block (chain seed 1's mean after the semicolon; CPU seconds as above, the block on
(off)):

===========  ===============================  ===============================  =======
setting      block on                         block off                        CPU s
===========  ===============================  ===============================  =======
dim 32, 200  0.8085 (0.8160, 0.8009)          0.8116 (0.8205, 0.8028)          32 (25)
dim 24, 150  0.8118 (0.8191, 0.8044); 0.8123  0.8132 (0.8192, 0.8073); 0.8143  18
dim 20, 200  0.8134 (0.8218, 0.8051)          0.8140 (0.8226, 0.8054)
dim 16, 200  0.8098 (0.8182, 0.8013); 0.8135  0.8165 (0.8231, 0.8099); 0.8173  13
dim 16, 250  0.8085 (0.8175, 0.7995); 0.8124  0.8151 (0.8217, 0.8085)          16
dim 16, 300  0.8080 (0.8167, 0.7992); 0.8116                                   about 19
dim 12, 200  0.8107 (0.8197, 0.8016); 0.8129                                   8
===========  ===============================  ===============================  =======

The block gains on every split seed at every setting, most at dim 16 (0.004-0.009): with it dim 16 does as well as
dim 32 without it, in two thirds of the time (myFM's fit: 10-11 s). biased-mf has no such block, and keeps the
settings chosen before it (``BIASED_GIBBS_DEFAULTS``). A validation share of 1%, not 5%: a chain does not stop
early, the held-back ratings only watch it (and choose the ranking weights), and the chain gains from the rest
(hybrid, on a holdout of 10% of split seed 0's training ratings: 0.8010 against 0.8045)."""
BIASED_GIBBS_DEFAULTS = MappingProxyType({**GIBBS_DEFAULTS, "dim": 32, "epochs": 200, "use_implicit": False})
"""biased-mf under ``--solver gibbs``: ``GIBBS_DEFAULTS`` as they were before the hybrid's flipped block (dim 32,
200 sweeps), chosen then on the same holdout (warm); the cold start scores 0.8354 (0.8426, 0.8281) there against
0.8400 (0.8480, 0.8320) warm, not searched further."""

register(ModelSpec("global-mean", "the mean training rating for everyone", closed_form=_global_mean))
register(ModelSpec("biases", "global mean + regularised user and movie biases, closed form", closed_form=_biases))
register(
    ModelSpec(
        "sigmoid-mf",
        "the reference: dot product squashed by a sigmoid to the rating scale",
        build=_sigmoid_mf,
        search_space=TRAINING,
    )
)
register(
    ModelSpec(
        "biased-mf",
        "global mean + user and movie biases + dot product",
        build=_biased_mf,
        solvers=("loop", "als", "gibbs"),
        # found by `movierec tune` on validation data (benchmarks/tune_defaults.py: 30 TPE trials on
        # ml-latest-small; test RMSE 0.8417 against 0.8431 before)
        defaults=MappingProxyType({"dim": 81, "lr": 0.0034, "reg": 0.0814, "init_std": 0.0273}),
        solver_defaults=MappingProxyType({"gibbs": BIASED_GIBBS_DEFAULTS}),
        search_space=TRAINING,
    )
)
register(
    ModelSpec(
        "hybrid",
        "biased-mf whose movie vectors add genre, year and tag embeddings, and whose users add an SVD++ term",
        build=_hybrid,
        solvers=("loop", "als", "gibbs"),
        # the ALS hybrid's reg was chosen on validation RMSE over 0.1-0.4 (test RMSE 0.8142 on split seed 0
        # against 0.8329 at the loop's 0.1; see train/als_solver.py); ALS leaves the SVD++ term out
        solver_defaults=MappingProxyType(
            {"als": MappingProxyType({"reg": 0.3, "use_implicit": False}), "gibbs": GIBBS_DEFAULTS}
        ),
        search_space=(
            *TRAINING,
            Param("use_genres", "choice", choices=(True, False)),
            Param("use_tags", "choice", choices=(True, False)),
            Param("use_implicit", "choice", choices=(True, False)),
        ),
    )
)
