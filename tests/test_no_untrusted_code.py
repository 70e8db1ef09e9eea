"""Nothing untrusted is executed: no pickle, no eval/exec, no unsafe loaders anywhere in the package.

Weights load from safetensors and metadata from JSON only. The checks read the source's syntax tree and tokens, so
comments and docstrings (which may say "nothing is pickled") do not count, while aliases and attribute calls do.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "movierec"
SOURCES = sorted(PACKAGE.rglob("*.py"))

UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal", "jsonpickle"}
UNSAFE_BUILTINS = {"eval", "exec", "compile"}
UNSAFE_ATTRIBUTES = {"read_pickle", "to_pickle", "unsafe_load", "full_load", "loads_unsafe"}


def problems_in(source: str, name: str) -> list[str]:
    """Every unsafe construct in ``source`` as 'file:line: what'."""
    tree = ast.parse(source)
    found: list[str] = []

    def report(node: ast.AST, what: str) -> None:
        found.append(f"{name}:{getattr(node, 'lineno', '?')}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in UNSAFE_MODULES:
                    report(node, f"imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            report(node, f"imports from {node.module}")
        elif isinstance(node, ast.Call):
            function = node.func
            keywords = {k.arg: k.value for k in node.keywords}
            called = ast.unparse(function)
            if isinstance(function, ast.Name) and function.id in UNSAFE_BUILTINS:
                report(node, f"calls {function.id}()")
            if isinstance(function, ast.Attribute):
                if function.attr in UNSAFE_ATTRIBUTES:
                    report(node, f"calls {called}()")
                if called.endswith(("torch.load", "torch.serialization.load")):
                    safe = keywords.get("weights_only")
                    if not (isinstance(safe, ast.Constant) and safe.value is True):
                        report(node, f"calls {called}() without weights_only=True")
                if called.endswith(("torch.save", "torch.serialization.save")):
                    report(node, f"calls {called}() (a pickle)")
                if called.endswith("yaml.load") and "Loader" not in keywords:
                    report(node, "calls yaml.load() without a safe Loader")
                if called.endswith("yaml.load") and "Loader" in keywords:
                    loader = ast.unparse(keywords["Loader"])
                    if "Safe" not in loader:
                        report(node, f"calls yaml.load(Loader={loader})")
                allow = keywords.get("allow_pickle")
                if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
                    report(node, f"calls {called}(allow_pickle=...)")
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NAME and "pickle" in token.string.lower():
            found.append(f"{name}:{token.start[0]}: names {token.string}")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(PACKAGE)) for p in SOURCES])
def test_no_untrusted_code_is_executed(path: Path) -> None:
    problems = problems_in(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE)))
    assert not problems, "\n".join(problems)


def test_the_package_is_scanned() -> None:
    names = {p.relative_to(PACKAGE).as_posix() for p in SOURCES}
    assert {"artifact/run.py", "train/checkpoint.py", "data/loader.py", "cli/__init__.py"} <= names


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("import pickle\n", "imports pickle"),
        ("import cloudpickle as cp\n", "imports cloudpickle"),
        ("from pickle import loads\n", "imports from pickle"),
        ("import torch\ntorch.load(path)\n", "without weights_only=True"),
        ("import torch\ntorch.load(path, weights_only=False)\n", "without weights_only=True"),
        ("import torch\ntorch.save(x, path)\n", "a pickle"),
        ("eval(text)\n", "calls eval()"),
        ("exec(text)\n", "calls exec()"),
        ("import yaml\nyaml.load(text)\n", "without a safe Loader"),
        ("import yaml\nyaml.load(text, Loader=yaml.FullLoader)\n", "Loader=yaml.FullLoader"),
        ("import yaml\nyaml.unsafe_load(text)\n", "calls yaml.unsafe_load()"),
        ("import pandas as pd\npd.read_pickle(path)\n", "calls pd.read_pickle()"),
        ("import numpy as np\nnp.load(path, allow_pickle=True)\n", "allow_pickle"),
        ("x = obj.__reduce__\nunpickler = 1\n", "names unpickler"),
    ],
)
def test_the_scan_catches_each_unsafe_construct(code: str, fragment: str) -> None:
    problems = problems_in(code, "sample.py")
    assert any(fragment in p for p in problems), problems


@pytest.mark.parametrize(
    "code",
    [
        '"""Nothing is pickled: weights go through safetensors."""\n',
        "# no pickle here\nx = 1\n",
        "import torch\ntorch.load(path, weights_only=True)\n",
        "import yaml\nyaml.load(text, Loader=yaml.SafeLoader)\n",
        "import numpy as np\nnp.load(path)\n",
        "import re\nre.compile('a+')\n",
        "from safetensors.torch import load_file\nload_file(path)\n",
    ],
)
def test_the_scan_allows_safe_code(code: str) -> None:
    assert problems_in(code, "sample.py") == []
