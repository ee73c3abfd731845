"""The figures hand-written docs state are the code's: each is checked against the constant it names, so
a changed threshold or list fails here instead of drifting (the defect's exact limit once read 256 in
the README and 128 in the code)."""

from pathlib import Path

import pytest

from gradlint import errorbars, inputs, memory, ops, stats
from gradlint.report import DOMINANT_DILUTION, PASS_THROUGH_SHARE

pytestmark = pytest.mark.probe  # the constants live in torch-importing modules

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
METRICS = (ROOT / "docs" / "metrics.md").read_text()


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("claim", [
    f"exact up to a smaller side of {stats.EXACT_DEFECT_UP_TO}",
    f"from {stats.DEFECT_PROBES} fixed random orthonormal directions",
    f"beyond {stats.MAX_SAMPLES} samples per unit",
    f"The default batch is {inputs.DEFAULT_BATCH}",
    f"({inputs.DEFAULT_BATCH} x {int((inputs.POSITIONS_BUDGET // inputs.DEFAULT_BATCH) ** 0.5)} x "
    f"{int((inputs.POSITIONS_BUDGET // inputs.DEFAULT_BATCH) ** 0.5)} positions at most, at least 8 samples)",
    f"token ids of length {inputs.SEQUENCE_LENGTH}",
    f"the first of {', '.join(map(str, inputs.SPATIAL_CANDIDATES))} that makes a forward pass succeed",
    f"to at least {memory.MIN_BATCH_POSITIONS} samples for image-like inputs, {memory.MIN_BATCH} otherwise",
    f"branch dominates its skip (k below its `dilution` option, {DOMINANT_DILUTION:g} by default)",
    f"pass-through blocks (p < {PASS_THROUGH_SHARE:g})",
])
def test_the_readme_states_the_codes_figures(claim):
    assert claim in flat(README), claim


@pytest.mark.parametrize("claim", [
    f"R = {errorbars.RESAMPLES} resamples draw the batch",
    f"on the first R_c = {errorbars.COLLAPSE_RESAMPLES} of the resamples",
    f"In a batch of more than {stats.GROUPS} samples these are kept per run of consecutive samples instead "
    f"({stats.GROUPS} runs",
])
def test_the_metrics_page_states_the_codes_figures(claim):
    assert claim in flat(METRICS), claim


def test_the_default_image_batch_budget_is_what_the_readme_says():
    # 64 x 32 x 32 positions: a 3 x 32 x 32 image batch is 64, a 3 x 224 x 224 one is 8
    assert inputs.default_batch((1, 3, 32, 32), channels=True) == 64
    assert inputs.default_batch((1, 3, 224, 224), channels=True) == 8


# How docs/metrics.md names each depth-bearing row of the op table.
DEPTH_BEARING_WORDS = {
    "linear": "`Linear`", "addmm": "`addmm`", "bilinear": "`Bilinear`", "conv": "`ConvTransposeNd`",
    "rnn": "RNN/LSTM/GRU", "rnn_cell": "RNN cells", "multihead_attention": "`MultiheadAttention`",
    "matmul": "`matmul`",
}


def test_metrics_lists_every_depth_bearing_row_of_the_op_table():
    rows = {op.name for op in ops.OPS if op.kind == ops.LAYER}
    assert rows == set(DEPTH_BEARING_WORDS), "a depth-bearing row was added or removed: update docs/metrics.md"
    paragraph = flat(METRICS.split("*Depth-bearing layer*", 1)[1].split("- *Compositional depth*", 1)[0])
    for row, words in DEPTH_BEARING_WORDS.items():
        assert words in paragraph, f"docs/metrics.md does not name {row} ({words})"


def test_the_configuration_docs_list_every_probe_setting_as_declared():
    from gradlint.settings import markdown_table

    docs = (ROOT / "docs" / "configuration.md").read_text()
    assert markdown_table() in docs, "docs/configuration.md's probe table is stale: python -m gradlint.settings"


def test_every_probe_setting_is_an_option_a_key_and_a_lint_keyword(tmp_path):
    """One declaration makes a setting reachable from the command line, the configuration and the API."""
    from click.testing import CliRunner

    from gradlint import cli, config, settings

    options = {p.name for p in cli.check.params}
    declared = settings.specs()
    assert {n for n, s in declared if s.option} <= options
    values = {"integer": 3, "text": "x", "choice": "float64", "shape": [4], "shapes": {"Net": [4]}}
    toml = "\n".join(f"{settings.key(n)} = {values[s.kind]!r}".replace("'", '"') if s.kind != "shapes"
                     else f'{settings.key(n)} = {{ Net = [4] }}' for n, s in declared)
    (tmp_path / "gradlint.toml").write_text("[probe]\n" + toml + "\n")
    read = config.load(tmp_path / "gradlint.toml").probe
    assert all(getattr(read, n) is not None for n, _ in declared)
    with pytest.raises(TypeError, match="unexpected keyword argument 'device'"):
        settings.lint_settings({"device": "cpu"})   # the API probes the model where it is
    help_text = CliRunner().invoke(cli.main, ["check", "--help"]).output
    assert all(f"--{settings.key(n)}" in help_text for n, s in declared if s.option)


def test_the_configuration_docs_name_every_severity():
    from gradlint.vocabulary import SEVERITIES

    docs = (ROOT / "docs" / "configuration.md").read_text()
    quoted = ", ".join(f'`"{n}"`' for n in SEVERITIES[:-1]) + f' or `"{SEVERITIES[-1]}"`'
    assert f"| `fail-on` | {quoted} |" in docs
