"""Where things are: factory discovery by plain names, paths never absolute, and construction sites
of layers built inside an installed package (the user's line and the package's line)."""

import os
import re
import sys

import pytest

from gradlint import sites
from gradlint.paths import display_path, is_installed_file, is_library_file

from conftest import ROOT

pytestmark = pytest.mark.probe

FAKELIB_MODELS = '''\
import torch.nn as nn


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.fc(x).relu())
'''
LINEAR_LINE = 7  # the line of `self.fc = nn.Linear(8, 8)` in FAKELIB_MODELS

USER_FILE = '''\
from fakelib.models import Tiny


def build():
    return Tiny()
'''
BUILD_LINE = 5  # the line of `return Tiny()` in USER_FILE


@pytest.fixture
def fakelib(tmp_path, monkeypatch):
    """A package "installed" in tmp_path/site-packages (on sys.path) and a user file that builds its model."""
    root = tmp_path / "site-packages"
    (root / "fakelib").mkdir(parents=True)
    (root / "fakelib" / "__init__.py").write_text("")
    (root / "fakelib" / "models.py").write_text(FAKELIB_MODELS)
    user = tmp_path / "user_model.py"
    user.write_text(USER_FILE)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield user
    for name in [m for m in sys.modules if m == "fakelib" or m.startswith("fakelib.") or m == "user_model"]:
        del sys.modules[name]


def strings(value):
    """Every string in a JSON document, keys included."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
    elif isinstance(value, str):
        yield value


def test_a_function_named_build_is_a_model_factory(gradlint, tmp_path):
    path = tmp_path / "newcomer.py"
    path.write_text("import torch.nn as nn\ndef build():\n    return nn.Sequential(nn.Linear(8, 8), nn.ReLU(), "
                    "nn.Linear(8, 2))\n")
    run = gradlint(str(path), "--format", "json")
    assert "no model found" not in run.stderr + run.stdout
    (result,) = run.json()["results"]
    assert result["target"].endswith(":build")


def test_a_layer_built_by_an_installed_package_has_a_user_site_and_a_library_site(fakelib):
    with sites.recording():
        import user_model
        model = user_model.build()
    user = (display_path(str(fakelib)), BUILD_LINE)
    assert sites.site_of(model.fc) == sites.site_of(model.head) == sites.site_of(model) == user
    assert sites.library_site_of(model.fc) == f"fakelib/models.py:{LINEAR_LINE}"
    assert sites.library_site_of(model.head) == f"fakelib/models.py:{LINEAR_LINE + 1}"
    assert sites.library_site_of(model) is None  # Tiny() is called by the user's own line


def test_a_layer_built_by_user_code_has_no_library_site(tmp_path):
    import torch.nn as nn

    with sites.recording():
        layer = nn.Linear(4, 4)
    line = sys._getframe().f_lineno - 1
    assert sites.site_of(layer) == (display_path(__file__), line)
    assert sites.library_site_of(layer) is None


def test_copies_keep_both_sites(fakelib):
    import copy

    with sites.recording():
        import user_model
        model = user_model.build()
    memo: dict = {}
    twin = copy.deepcopy(model, memo)
    sites.copy_sites(model, memo)
    assert sites.site_of(twin.fc) == sites.site_of(model.fc)
    assert sites.library_site_of(twin.fc) == f"fakelib/models.py:{LINEAR_LINE}"


def test_no_absolute_path_in_the_report_of_a_model_from_an_installed_package(gradlint, fakelib, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(fakelib.parent / "site-packages"))
    run = gradlint(os.path.relpath(fakelib, ROOT), "--format", "json")
    doc = run.json()
    assert doc["results"][0]["target"].endswith(":build"), run.stderr
    # tmp_path is outside the working directory, so it may only appear at the end of a "../../tmp/..." path
    absolute = re.compile(r"(?<!\.\.)" + re.escape(str(fakelib.parent)))
    for s in strings(doc):
        assert not absolute.search(s) and not s.startswith("/") and "site-packages" not in s, s


def test_display_path_below_the_working_directory_is_relative_to_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert display_path(str(tmp_path / "models" / "net.py")) == os.path.join("models", "net.py")
    assert display_path(os.path.join("models", "net.py")) == os.path.join("models", "net.py")


def test_display_path_in_an_installed_package_is_relative_to_its_install_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    resnet = os.path.join(os.sep, "opt", "env", "lib", "site-packages", "torchvision", "models", "resnet.py")
    assert is_installed_file(resnet)
    assert display_path(resnet) == os.path.join("torchvision", "models", "resnet.py")
    debian = os.path.join(os.sep, "usr", "lib", "python3", "dist-packages", "timm", "models", "vit.py")
    assert display_path(debian) == os.path.join("timm", "models", "vit.py")
    assert display_path(os.__file__) == "os.py"  # the standard library's own folder
    assert is_installed_file(os.__file__) and not is_library_file(os.__file__)


def test_display_path_elsewhere_is_relative_with_dots(tmp_path, monkeypatch):
    here = tmp_path / "project"
    here.mkdir()
    monkeypatch.chdir(here)
    other = tmp_path / "other" / "net.py"
    assert not is_installed_file(str(other))
    assert display_path(str(other)) == os.path.join("..", "other", "net.py")


DEEP_LIB = '''\
import torch.nn as nn


class Deep(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(16, 16) for _ in range(24))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x).tanh()
        return x
'''
DEEP_LAYERS_LINE = 7


def test_findings_on_layers_a_library_built_point_at_the_users_line_and_name_the_library_site(
        gradlint, tmp_path, monkeypatch):
    root = tmp_path / "site-packages" / "deeplib"
    root.mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "models.py").write_text(DEEP_LIB)
    user = tmp_path / "deep_user.py"
    user.write_text("from deeplib.models import Deep\n\n\ndef build():\n    return Deep()\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site-packages"))
    run = gradlint(str(user), "--format", "json")
    (result,) = run.json()["results"]
    on_layers = [f for f in result["findings"] if f["layer"] and f["layer"].startswith("layers.")]
    assert on_layers, run.stdout
    for f in on_layers:
        assert f["path"].endswith("deep_user.py") and f["line"] == 5
        assert f["library"] == f"deeplib/models.py:{DEEP_LAYERS_LINE}"
    assert not [s for s in strings(run.json()) if s.startswith("/")]
