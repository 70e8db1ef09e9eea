"""The walkthrough notebook: stored without outputs, uses only the public API, and runs top to bottom in a fresh
kernel."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "walkthrough.ipynb"
KERNEL_NAME = "movierec-walkthrough-test"


def test_notebook_is_stored_without_outputs() -> None:
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, "the walkthrough has no code cells"
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]


def below_the_public_api(source: str) -> list[str]:
    """The imports in ``source`` that reach below ``import movierec``: ``import movierec.x``, ``from movierec.x
    import ...``, and ``from movierec import name`` for a name outside ``movierec.__all__``."""
    import movierec

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("movierec.")]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module.startswith("movierec."):
                found.append(node.module)
            elif node.module == "movierec":
                found += [f"movierec.{a.name}" for a in node.names if a.name not in movierec.__all__]
    return found


def test_notebook_imports_only_the_public_api() -> None:
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    sources = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    assert any("import movierec" in source for source in sources)
    internal = [name for source in sources for name in below_the_public_api(source)]
    assert not internal, f"the walkthrough imports internals: {internal}"
    assert below_the_public_api("import movierec.train.session\nfrom movierec import fit, atomic") == [
        "movierec.train.session",
        "movierec.atomic",
    ]


def kernel_for_this_python(root: Path) -> Path:
    """A kernelspec that runs this interpreter (the venv's), so the notebook imports the package under test."""
    spec = root / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL_NAME, "language": "python"}))
    return root


@pytest.mark.slow
def test_walkthrough_runs_top_to_bottom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_for_this_python(tmp_path / "jupyter")))
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's run folders land here
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, kernel_name=KERNEL_NAME, timeout=600, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, on the first error

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 12, f"expected a figure per step, got {len(figures)}"
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "lowest validation RMSE at lr = " in text
    assert "notebook ran in" in text
    print(text[text.index("notebook ran in") :].splitlines()[0])  # shown with pytest -s
    assert list(tmp_path.glob("movierec-walkthrough-*/sweep-lr/report.html"))
