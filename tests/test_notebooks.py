"""Every notebook in notebooks/ runs top to bottom in a fresh kernel, shows every figure it draws,
and is committed stripped."""

import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))

# A cell draws when it creates a figure through pyplot or displays an image file.
CREATES_FIGURE = re.compile(r"\bplt\.(figure|subplots|subplot|subplot_mosaic)\(")
DISPLAYS_IMAGE = re.compile(r"\bdisplay\(\s*Image\(")
IMAGE_TYPES = ("image/png", "image/svg+xml")


def drawn_figures(source: str) -> int:
    """How many figures a cell's source creates or displays (a loop may make more)."""
    return len(CREATES_FIGURE.findall(source)) + len(DISPLAYS_IMAGE.findall(source))


def shown_images(cell) -> int:
    return sum(
        any(kind in out.get("data", {}) for kind in IMAGE_TYPES)
        for out in cell.get("outputs", [])
        if out.get("output_type") in ("display_data", "execute_result")
    )


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 1


def test_drawn_figures_criterion():
    assert drawn_figures("fig, ax = plt.subplots(figsize=(5, 3))\nax.plot(x)") == 1
    assert drawn_figures("fig = plt.figure()\nfig2, axes = plt.subplots(1, 2)") == 2
    assert drawn_figures("display(Image(filename=result['png']))") == 1
    assert drawn_figures("plt.show()\nprint(ax)") == 0


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stripped(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} is committed with outputs"
            assert cell.execution_count is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("PYTHONWARNINGS", "ignore")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    code = [(i, cell) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    errors = [out for _, cell in code for out in cell.outputs if out.output_type == "error"]
    assert not errors
    drawing = [(i, cell) for i, cell in code if drawn_figures(cell.source)]
    assert drawing, f"{path.name} draws no figure"
    # Every figure a cell draws is shown in its output: a backend switched away from inline
    # (matplotlib.use("Agg") in an imported module, say) would leave it blank.
    missing = [
        f"cell {i}: {drawn_figures(cell.source)} figure(s) drawn, {shown_images(cell)} shown"
        for i, cell in drawing
        if shown_images(cell) < drawn_figures(cell.source)
    ]
    assert not missing, f"{path.name}: " + "; ".join(missing)
