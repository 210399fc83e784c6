"""The committed notebooks: code that parses, outputs from one clean top-to-bottom run, and the
shipped model's. `make notebooks` regenerates them; the last test reruns them in memory."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MANIFEST = ROOT / "ml" / "models" / "galaxy10.json"
NOTEBOOK_IDS = [path.name for path in NOTEBOOKS]


def _code_cells(path: Path) -> list[dict[str, Any]]:
    notebook = json.loads(path.read_text())
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def _source(cell: dict[str, Any]) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def test_both_notebooks_are_found() -> None:
    assert NOTEBOOK_IDS == ["01-data-and-labels.ipynb", "02-train-and-evaluate.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NOTEBOOK_IDS)
def test_every_code_cell_parses(path: Path) -> None:
    for index, cell in enumerate(_code_cells(path)):
        try:
            ast.parse(_source(cell))
        except SyntaxError as exc:
            pytest.fail(f"{path.name}, code cell {index}: {exc}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NOTEBOOK_IDS)
def test_committed_outputs_come_from_one_clean_run(path: Path) -> None:
    cells = _code_cells(path)
    # 1, 2, 3, ...: every cell ran, in order, in one kernel (no cell edited and left unrun).
    assert [cell["execution_count"] for cell in cells] == list(range(1, len(cells) + 1)), (
        f"{path.name} was not executed top to bottom: run `make notebooks`"
    )
    errors = [
        f"cell {index}: {output.get('ename')}: {output.get('evalue')}"
        for index, cell in enumerate(cells)
        for output in cell["outputs"]
        if output["output_type"] == "error"
    ]
    assert not errors, f"{path.name} holds error outputs: {errors}"


def test_notebook_02_shows_the_shipped_model() -> None:
    version = json.loads(MANIFEST.read_text())["model_version"]
    first = _code_cells(ROOT / "notebooks" / "02-train-and-evaluate.ipynb")[0]
    shown = "".join("".join(output.get("data", {}).get("text/plain", "")) for output in first["outputs"])
    assert version in shown, f"notebook 02 describes another model than {version}: run `make notebooks`"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=NOTEBOOK_IDS)
def test_notebook_runs_without_error(path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbclient = pytest.importorskip("nbclient", reason="nbclient not installed (requirements-train.txt)")
    pytest.importorskip("ipykernel", reason="ipykernel not installed (requirements-train.txt)")
    import nbformat

    if not (data_root / "gz_decals_votes").is_dir():
        pytest.skip(f"gz_decals_votes not present under {data_root}")
    monkeypatch.setenv("DATA_ROOT", str(data_root))
    notebook = nbformat.read(path, as_version=4)
    # Executed in memory: the committed file is left as it is.
    nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors
