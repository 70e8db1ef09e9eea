"""movierec: a movie recommender built on PyTorch, as a library.

```python
import movierec

data = movierec.load_data("ml-latest-small")
run = movierec.fit(data, model="hybrid")
rec = movierec.load(run)
rec.recommend(ratings={318: 5, 296: 4.5}, n=10).to_frame()
```

Every name in ``__all__`` is the public, documented API; the subpackages below it are internal and may move.
The names are imported on first use (PEP 562), so ``import movierec`` stays fast and never imports torch.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from movierec.errors import MovieRecError

__version__ = "0.1.0"

if TYPE_CHECKING:
    from movierec.api.data import Data, load_data
    from movierec.api.evaluation import PROTOCOLS, Evaluation, evaluate_run
    from movierec.api.explore import Eda, eda
    from movierec.api.recommender import Recommender, load
    from movierec.api.results import MovieExplanation, Onboarding, Predictions, Recommendations, SimilarMovies
    from movierec.api.runs import Comparison, Run, compare, load_run
    from movierec.api.training import Sweep, fit, sweep

_PUBLIC = {
    "movierec.api.data": ("Data", "load_data"),
    "movierec.api.evaluation": ("PROTOCOLS", "Evaluation", "evaluate_run"),
    "movierec.api.explore": ("Eda", "eda"),
    "movierec.api.recommender": ("Recommender", "load"),
    "movierec.api.results": ("MovieExplanation", "Onboarding", "Predictions", "Recommendations", "SimilarMovies"),
    "movierec.api.runs": ("Comparison", "Run", "compare", "load_run"),
    "movierec.api.training": ("Sweep", "fit", "sweep"),
}
_HOME = {name: module for module, names in _PUBLIC.items() for name in names}
_DEPRECATED: dict[str, str] = {}
"""A public name that was renamed or removed -> the name to use instead; using it warns (DeprecationWarning)."""


__all__ = [
    "PROTOCOLS",
    "Comparison",
    "Data",
    "Eda",
    "Evaluation",
    "MovieExplanation",
    "MovieRecError",
    "Onboarding",
    "Predictions",
    "Recommendations",
    "Recommender",
    "Run",
    "SimilarMovies",
    "Sweep",
    "__version__",
    "compare",
    "eda",
    "evaluate_run",
    "fit",
    "load",
    "load_data",
    "load_run",
    "sweep",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use."""
    if name in _DEPRECATED:
        instead = _DEPRECATED[name]
        warnings.warn(f"movierec.{name} is deprecated; use movierec.{instead}.", DeprecationWarning, stacklevel=2)
        return __getattr__(instead)
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'movierec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
