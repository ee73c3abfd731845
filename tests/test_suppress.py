"""Suppression comments: on the model's line or a layer's line, counted in the report."""

import textwrap

import pytest

from gradlint import suppress

pytestmark = pytest.mark.probe

MODEL = '''
import torch.nn as nn


def deep_mlp() -> nn.Module:{model_comment}
    layers = []
    for _ in range(30):
        linear = nn.Linear(64, 64){layer_comment}
        nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
        nn.init.zeros_(linear.bias)
        layers += [linear, nn.BatchNorm1d(64), nn.ReLU()]
    layers.append(nn.Linear(64, 10))
    return nn.Sequential(*layers)
'''


def write(tmp_path, model_comment="", layer_comment=""):
    path = tmp_path / "model.py"
    path.write_text(MODEL.format(model_comment=model_comment, layer_comment=layer_comment))
    return str(path)


def codes(result, key="findings"):
    return sorted(f["code"] for f in result[key])


def test_comment_parsing_codes_prefixes_and_bare_ignore(tmp_path):
    path = tmp_path / "c.py"
    path.write_text(textwrap.dedent('''\
        a = 1  # gradlint: ignore[GL101, gl2]
        b = "# gradlint: ignore"  # not a comment above, a string
        c = 3  # GRADLINT:ignore
        d = 4  # noqa; gradlint: ignore[]
    '''))
    found = suppress.comments(str(path))
    assert found[1] == frozenset({"GL101", "GL2"})
    assert 2 not in found
    assert found[3] == suppress.ALL
    assert found[4] == frozenset()  # an empty list silences nothing
    assert suppress._silences(found[1], "GL203") and not suppress._silences(found[1], "GL301")
    assert not suppress._silences(found[4], "GL101")


def test_ignore_on_the_factory_line_and_on_a_layer_line(gradlint, tmp_path):
    base = gradlint(write(tmp_path), "--format", "json").json()["results"][0]
    assert {"GL101", "GL301", "GL401"} <= set(codes(base)) and base["suppressed"] == []

    model_level = gradlint(write(tmp_path, model_comment="  # gradlint: ignore[GL401, GL3]"),
                           "--format", "json").json()
    (r,) = model_level["results"]
    assert "GL401" not in codes(r) and "GL301" not in codes(r) and "GL101" in codes(r)
    assert codes(r, "suppressed") == ["GL301", "GL401"]
    assert model_level["summary"]["suppressed"] == 2

    # the layer findings point at the line that constructs the layer: a comment there silences them
    layer_level = gradlint(write(tmp_path, layer_comment="  # gradlint: ignore[GL101]"), "--format", "json")
    (r,) = layer_level.json()["results"]
    assert "GL101" not in codes(r) and "GL101" in codes(r, "suppressed")
    assert layer_level.code == 0  # the only error was suppressed


def test_bare_ignore_silences_everything_and_text_counts_it(gradlint, tmp_path):
    run = gradlint(write(tmp_path, model_comment="  # gradlint: ignore"))
    assert run.code == 0
    text = " ".join(run.stdout.split())  # the long temporary path may wrap the head line
    assert "model.py:deep_mlp CLEAN [4 suppressed: GL101, GL301, GL401, GL404]" in text
    assert run.stdout.rstrip().endswith("suppressed by comments")


def test_what_if_variants_keep_the_suppressions(gradlint, tmp_path):
    run = gradlint(write(tmp_path, layer_comment="  # gradlint: ignore[GL3]"), "--what-if", "looks-linear",
                   "--format", "json")
    (r,) = run.json()["results"]
    assert "GL301" in codes(r, "suppressed")
    (w,) = r["what_if"]
    assert w["applied"] and "GL301" not in codes(w)
    assert all(s["code"] != "GL301" for s in w["finding_status"])
