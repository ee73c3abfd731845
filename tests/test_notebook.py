"""Notebooks: a notebook that defines a model and lints it, executed by nbclient on a real IPython kernel.
The result displays itself as HTML (verdict, figures, findings, Fig. 1 panels), and %gradlint lints a
model of the notebook's namespace."""

from __future__ import annotations

import re

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

pytestmark = pytest.mark.probe

CELLS = [
    "import torch, torch.nn as nn, gradlint\n"
    "torch.manual_seed(0)\n"
    "layers = []\n"
    "for _ in range(30):\n"
    "    layers += [nn.Linear(32, 32), nn.ReLU()]\n"
    "net = nn.Sequential(*layers)\n"
    "x = torch.randn(64, 32)",
    "gradlint.lint(net, (x,))",
    "%load_ext gradlint",
    "r = %gradlint net, x\nr",
    "%gradlint net, x, x",
]


def _run() -> list:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True).execute()
    return nb.cells


def _html(cell) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in cell.outputs)


def test_a_notebook_shows_the_report_and_the_magic_lints_a_notebook_model():
    cells = _run()
    shown, magic = _html(cells[1]), _html(cells[3])
    for page in (shown, magic):
        assert 'class="gradlint"' in page and ">error</span>" in page            # the verdict (GL102: default init)
        assert re.search(r"GSC input</td><td>[-+.\de]+ \+/- [-+.\de]+</td>", page)  # a figure with its bar
        assert "GL102 vanishing-gradients" in page and "<i>fix:</i>" in page     # a finding and its fix
        assert 'src="data:image/png;base64,' in page                           # the Fig. 1 panels
    (error,) = cells[4].outputs
    assert error["output_type"] == "error" and "put several inputs in a tuple" in error["evalue"]


@pytest.mark.cli
def test_the_html_format_is_a_page_with_every_model_escaped(gradlint, tmp_path):
    """``--format html``: one section per model, the text of the model's file escaped (a model whose
    construction fails says why, in the page)."""
    (tmp_path / "models.py").write_text(
        "import torch.nn as nn\n\n"
        "def deep():\n"
        "    return nn.Sequential(*[m for _ in range(12) for m in (nn.Linear(16, 16), nn.Tanh())])\n\n"
        "def broken():\n"
        "    raise ValueError('<b>not bold</b>')\n", encoding="utf-8")
    run = gradlint("models.py:deep", "models.py:broken", "--input-shape", "16", "--format", "html", cwd=tmp_path)
    page = run.stdout
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count('<div class="gradlint">') == 2
    assert "models.py:deep" in page and "models.py:broken" in page and ">not analysed</span>" in page
    assert "&lt;b&gt;not bold&lt;/b&gt;" in page and "<b>not bold</b>" not in page
