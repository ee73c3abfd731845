"""The report cache (.gradlint_cache): what hits, what misses, and that a cached report is judged and rendered
as a fresh one is.

The suite runs with GRADLINT_NO_CACHE=1 (conftest.py); these tests turn the cache on with a folder of their own.
Hits are seen by counting probes (in process) or by the text header's "(from cache)", never by timing.
"""

import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.probe

MODEL = '''\
"""A small tanh MLP."""

import torch.nn as nn


def build_mlp() -> nn.Module:
    layers = []
    for _ in range(6):
        linear = nn.Linear(16, 16)  # a comment
        layers += [linear, nn.Tanh()]
    return nn.Sequential(*layers, nn.Linear(16, 4))


def example_inputs():
    import torch

    return torch.randn(32, 16, generator=torch.Generator().manual_seed(0))
'''


def write(folder: Path, text: str = MODEL) -> Path:
    path = folder / "model.py"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def probes(monkeypatch):
    """How many times the probe ran, in this process."""
    from gradlint import probe

    calls = []
    real = probe.run
    monkeypatch.setattr(probe, "run", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def lint(path: Path, folder: Path, what_if=(), rules=None, **settings):
    """The model of ``path``, analysed as the command line analyses it, with the cache in ``folder``."""
    from gradlint.api import analyse
    from gradlint.cache import Cache
    from gradlint.load import resolve
    from gradlint.settings import Probe

    (source,) = resolve(str(path))
    return analyse(source, Probe(**settings).resolved(), tuple(what_if), rules, cache=Cache(folder))


def test_a_second_analysis_of_the_same_model_comes_from_the_cache(tmp_path, probes):
    path, folder = write(tmp_path), tmp_path / "cache"
    first = lint(path, folder)
    assert first.ok and not first.cached and len(probes) == 1
    assert len(list((folder / "reports").glob("*.pickle"))) == 1
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (folder / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    second = lint(path, folder)
    assert second.cached and len(probes) == 1
    assert second.report == first.report and second.findings == first.findings and second.findings


@pytest.mark.parametrize("edit", ["width", "init", "line moved"])
def test_a_change_to_the_model_misses(tmp_path, probes, edit):
    path, folder = write(tmp_path), tmp_path / "cache"
    lint(path, folder)
    # each edit keeps every other line where it was
    changed = {"width": MODEL.replace("nn.Linear(16, 4)", "nn.Linear(16, 5)"),
               "init": MODEL.replace("  # a comment", "; nn.init.orthogonal_(linear.weight)"),
               # the same graph and values, and the factory's line; the layers' lines (findings print them) moved
               "line moved": MODEL.replace("        linear = ", "        # a new line\n        linear = ")}[edit]
    assert changed != MODEL
    write(tmp_path, changed)
    assert not lint(path, folder).cached and len(probes) == 2


def test_a_comment_changed_in_place_hits(tmp_path, probes):
    path, folder = write(tmp_path), tmp_path / "cache"
    lint(path, folder)
    write(tmp_path, MODEL.replace("# a comment", "# another comment, same line").replace('"""A small', '"""Any small'))
    assert lint(path, folder).cached and len(probes) == 1


def test_a_probe_setting_or_a_what_if_change_misses(tmp_path, probes):
    path, folder = write(tmp_path), tmp_path / "cache"
    lint(path, folder)
    assert not lint(path, folder, draws=2).cached and len(probes) == 2
    assert not lint(path, folder, seed=1).cached and len(probes) == 3
    with_what_if = lint(path, folder, what_if=("orthogonal",))
    assert not with_what_if.cached and len(probes) == 5   # the model and its orthogonal copy
    again = lint(path, folder, what_if=("orthogonal",))
    assert again.cached and len(probes) == 5
    assert again.what_if == with_what_if.what_if and again.what_if[0].applied
    # the variant from the cache is judged by the rules of this run, as the model is
    from gradlint.rules.gl102_vanishing_gradients import VanishingGradients

    strict = lint(path, folder, what_if=("orthogonal",), rules=[VanishingGradients(warning=1e3, error=1e-12)])
    assert strict.cached and len(probes) == 5
    assert {f.code for f in strict.findings} == {f.code for f in strict.what_if[0].findings} == {"GL102"}


@pytest.mark.parametrize("version", ["gradlint", "torch"])
def test_another_gradlint_or_torch_version_misses(tmp_path, probes, monkeypatch, version):
    import torch

    from gradlint import cache

    path, folder = write(tmp_path), tmp_path / "cache"
    lint(path, folder)
    if version == "gradlint":
        monkeypatch.setattr(cache, "__version__", cache.__version__ + ".post1")
    else:
        monkeypatch.setattr(torch, "__version__", torch.__version__ + "+other")
    assert not lint(path, folder).cached and len(probes) == 2


def test_a_corrupt_or_foreign_entry_is_ignored_and_replaced(tmp_path, probes):
    path, folder = write(tmp_path), tmp_path / "cache"
    first = lint(path, folder)
    (entry,) = (folder / "reports").glob("*.pickle")
    entry.write_bytes(b"\x80\x05not a pickle")
    again = lint(path, folder)
    assert again.ok and not again.cached and again.report == first.report and len(probes) == 2
    assert lint(path, folder).cached and len(probes) == 2   # rewritten
    entry.write_bytes(b"")   # a write cut short
    assert not lint(path, folder).cached and len(probes) == 3
    import pickle

    from gradlint.cache import Entry

    entry.write_bytes(pickle.dumps(Entry("another key", first.report)))   # an entry stored under the wrong name
    assert not lint(path, folder).cached and len(probes) == 4


def test_a_folder_that_cannot_be_written_is_no_error(tmp_path, probes):
    path = write(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = lint(path, blocker / "cache")
    assert result.ok and not result.cached
    assert not lint(path, blocker / "cache").cached and len(probes) == 2


def test_the_key_hashes_parameters_and_inputs_not_their_identity(tmp_path):
    import torch
    import torch.nn as nn

    from gradlint.assemble import Subject
    from gradlint.cache import key
    from gradlint.inputs import ProbeInputs
    from gradlint.settings import Probe

    def digest(model, x):
        return key(model, ProbeInputs((x,)), Subject("m"), Probe().resolved(), ())

    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    torch.manual_seed(0)
    b = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.ones(8, 4)
    assert digest(a, x) == digest(b, x.clone())
    assert digest(a, x) != digest(a, x * 2)
    b[1] = nn.LeakyReLU(0.1)   # no parameter changed: the module's configuration did
    assert digest(a, x) != digest(b, x)
    with torch.no_grad():
        a[0].bias[0] += 1e-6
    assert digest(a, x) != digest(b, x)


# --- the command line ----------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path):
    write(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.gradlint]\nmodels = ["model.py"]\n', encoding="utf-8")
    return tmp_path


ON = {"GRADLINT_NO_CACHE": None, "GRADLINT_CACHE_DIR": None}


def test_the_command_line_reuses_reports_and_says_so_only_in_the_text_header(gradlint, project):
    cold = gradlint("--format", "json", cwd=project, env=ON)
    assert cold.code == 0 and (project / ".gradlint_cache" / "CACHEDIR.TAG").exists()
    warm = gradlint("--format", "json", cwd=project, env=ON)
    assert warm.stdout == cold.stdout   # machine formats are the same, cached or not
    assert cold.json()["results"][0]["findings"]
    text = gradlint(cwd=project, env=ON)
    assert "model.py:build_mlp  " in text.stdout and "(from cache)" in text.stdout.splitlines()[0]
    fresh = gradlint("--no-cache", cwd=project, env=ON)   # an entry is there, and is not read
    assert "(from cache)" not in fresh.stdout
    assert fresh.stdout == text.stdout.replace("  (from cache)", "", 1)


def test_rule_selection_and_suppression_apply_to_a_cached_report(gradlint, project):
    first = gradlint("--format", "json", cwd=project, env=ON).json()["results"][0]
    codes = sorted({f["code"] for f in first["findings"]})
    assert len(codes) >= 2
    picked = gradlint("--select", codes[0], cwd=project, env=ON)
    assert "(from cache)" in picked.stdout
    assert codes[0] in picked.stdout and not any(code in picked.stdout for code in codes[1:])
    # a suppression comment on the factory's line: no line moved, so the report is cached, and the comment counts
    model = project / "model.py"
    model.write_text(model.read_text().replace("def build_mlp() -> nn.Module:",
                                               f"def build_mlp() -> nn.Module:  # gradlint: ignore[{codes[0]}]"))
    quiet = gradlint(cwd=project, env=ON)
    assert "(from cache)" in quiet.stdout and f"suppressed: {codes[0]}" in quiet.stdout


def test_no_cache_neither_reads_nor_writes_and_cache_dir_moves_it(gradlint, project, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "c"
    assert gradlint("--no-cache", cwd=project, env=ON).code == 0
    assert not (project / ".gradlint_cache").exists()
    assert gradlint("--cache-dir", str(elsewhere), cwd=project, env=ON).code == 0
    assert not (project / ".gradlint_cache").exists() and list((elsewhere / "reports").glob("*.pickle"))
    assert "(from cache)" in gradlint(cwd=project, env=ON | {"GRADLINT_CACHE_DIR": str(elsewhere)}).stdout
    (project / "pyproject.toml").write_text('[tool.gradlint]\nmodels = ["model.py"]\ncache-dir = "build/cache"\n')
    assert gradlint(cwd=project, env=ON).code == 0 and (project / "build" / "cache" / "CACHEDIR.TAG").exists()


def test_a_bad_cache_dir_in_the_configuration_is_a_configuration_error(gradlint, project):
    (project / "pyproject.toml").write_text('[tool.gradlint]\nmodels = ["model.py"]\ncache-dir = 3\n')
    run = gradlint(cwd=project, env=ON)
    assert run.code == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip() == ("gradlint: error: pyproject.toml: tool.gradlint.cache-dir: expected a non-empty "
                                  "string, got 3")


def test_the_code_of_a_leaf_module_the_graph_does_not_trace_into_is_in_the_key(tmp_path, monkeypatch):
    """A subclass of nn.Linear is one op of the graph (the op table's row): its forward's code, inherited from a
    base class of the user's, decides the numbers and the graph does not show it."""
    import importlib.util

    import torch

    from gradlint.assemble import Subject
    from gradlint.cache import key
    from gradlint.inputs import ProbeInputs
    from gradlint.settings import Probe

    source = '''\
import torch.nn as nn


class Base(nn.Linear):
    def forward(self, x):
        return super().forward(x) * {factor}  # {comment}


class Scaled(Base):
    pass
'''

    def digest(factor: int, comment: str) -> str:
        path = tmp_path / f"leaf_{factor}_{comment}.py"
        path.write_text(source.format(factor=factor, comment=comment), encoding="utf-8")
        spec = importlib.util.spec_from_file_location("leaf", path)   # one module name: the same class names
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, "leaf", module)   # as gradlint.load registers a target file
        spec.loader.exec_module(module)
        torch.manual_seed(0)
        model = torch.nn.Sequential(module.Scaled(4, 4))
        return key(model, ProbeInputs((torch.ones(2, 4),)), Subject("m"), Probe().resolved(), ())

    assert digest(2, "a") == digest(2, "b")   # comments do not count
    assert digest(2, "a") != digest(3, "a")


def test_a_model_torch_fx_cannot_trace_is_keyed_by_its_code(tmp_path, probes):
    """The hooks tier runs the fixture (data-dependent control flow): no graph to key by, so the file's syntax
    tree is: a comment edited in place hits, a changed forward misses."""
    fixture = (Path(__file__).parent / "fixtures" / "traced_fallback.py").read_text(encoding="utf-8")
    path, folder = write(tmp_path, fixture), tmp_path / "cache"
    first = lint(path, folder)
    assert first.report.trace == "hooks" and not first.cached
    write(tmp_path, fixture.replace("torch.fx cannot trace it", "torch.fx never traces it"))
    assert lint(path, folder).cached and len(probes) == 1
    write(tmp_path, fixture.replace("h.sum() > 0", "h.sum() < 0"))
    assert not lint(path, folder).cached and len(probes) == 2


def test_a_listing_comes_from_the_cache_until_a_project_file_it_loaded_changes(tmp_path, monkeypatch):
    """A file's list of models is kept too (a warm run forks no child to import the file only to list it),
    with the digests of the project files its import loaded: editing any of them lists the file again."""
    from gradlint import cli, isolate
    from gradlint.cache import Cache
    from gradlint.config import Settings

    monkeypatch.setattr(isolate, "CAN_FORK", False)   # in this process, so the listings can be counted
    listings = []
    real = cli._models_in
    monkeypatch.setattr(cli, "_models_in", lambda *a, **k: listings.append(a[0]) or real(*a, **k))
    helper = tmp_path / "cache_test_widths.py"
    helper.write_text("WIDTH = 16\n", encoding="utf-8")
    monkeypatch.delitem(sys.modules, "cache_test_widths", raising=False)
    path = write(tmp_path, MODEL.replace("import torch.nn as nn\n",
                                         "import torch.nn as nn\nfrom cache_test_widths import WIDTH\n"))
    folder = tmp_path / "cache"

    def run():
        (result,) = cli._analyse_target(str(path), Settings(), (), cache=Cache(folder))
        assert result.ok
        return result

    assert not run().cached and len(listings) == 1
    assert run().cached and len(listings) == 1
    helper.write_text("WIDTH = 16  # the same width\n", encoding="utf-8")
    assert run().cached and len(listings) == 2   # listed again; the model's report is still the same
    write(tmp_path, path.read_text(encoding="utf-8").replace("# a comment", "# a comment edited"))
    assert run().cached and len(listings) == 3


def test_the_import_warnings_of_a_file_are_shown_once_whether_its_listing_is_cached_or_not(gradlint, tmp_path):
    write(tmp_path, MODEL.replace("import torch.nn as nn\n", "import warnings\n\nimport torch.nn as nn\n\n"
                                  "warnings.warn('widths of 16 are deprecated')\n"))
    runs = [gradlint("model.py", cwd=tmp_path, env=ON) for _ in range(2)]
    assert "(from cache)" in runs[1].stdout
    assert [r.stderr.count("UserWarning: widths of 16 are deprecated") for r in runs] == [1, 1]
