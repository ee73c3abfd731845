"""The frozen reports the rule tests judge are the probe's reports of the rule examples today."""

import json

import pytest

from gradlint.report import to_plain

import snapshots

pytestmark = pytest.mark.probe


@pytest.mark.parametrize("name", sorted(snapshots.examples()))
def test_snapshot_is_the_current_report(name):
    path = snapshots.FOLDER / f"{name}.json"
    assert path.exists(), f"{path.name} is missing: run `python tests/snapshots.py`"
    stored = json.loads(path.read_text())
    live = to_plain(snapshots.live(snapshots.examples()[name]))
    diffs = snapshots.differences(live, stored)
    assert not diffs, f"{name}: stale snapshot (run `python tests/snapshots.py`): {diffs[:5]}"


def test_a_report_survives_the_round_trip_through_json():
    report = snapshots.load("residual_mlp")
    assert snapshots.text(report) == (snapshots.FOLDER / "residual_mlp.json").read_text()


def test_no_snapshot_without_an_example():
    assert {p.stem for p in snapshots.FOLDER.glob("*.json")} == set(snapshots.examples())
