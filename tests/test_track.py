"""``gradlint.track``: the probe during training, its trajectory, its events, and the callbacks."""

import importlib.util
import json
import subprocess
import sys

import jsonschema
import pytest
import referencing
import torch
import torch.nn as nn
import torch.nn.functional as F

import gradlint
from gradlint import paper

from conftest import ROOT, SCHEMA

pytestmark = pytest.mark.probe

needs_matplotlib = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                                      reason="the plot needs matplotlib (the plot extra)")


def _bn_dropout_mlp():
    """BatchNorm (running statistics) and dropout (the RNG): what a probe could perturb."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.3),
                         nn.Linear(32, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 4))


def _train(model, steps, tracker=None):
    """SGD with momentum on a fixed stream of batches; the tracker, if any, sees each batch first."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(3)
    for step in range(steps):
        x, y = torch.randn(32, 16, generator=g), torch.randint(0, 4, (32,), generator=g)
        if tracker is not None:
            tracker.step(x)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def test_trajectory_has_the_figures_at_every_nth_step():
    model = _bn_dropout_mlp()
    tracker = gradlint.track(model, every=3)
    _train(model, 8, tracker)
    assert [p.step for p in tracker.points] == [0, 3, 6]
    gsc = tracker.trajectory("gsc_max")
    assert [s for s, _ in gsc] == [0, 3, 6] and all(v is not None and v > 0 for _, v in gsc)
    assert all(p.error is None and p.summary.effective_depth is not None for p in tracker.points)
    assert tracker.last.probe.batch_size == 32      # the loop's own batch
    assert gsc[0][1] != gsc[2][1]                   # training moved the figures
    with pytest.raises(ValueError, match="unknown figure"):
        tracker.trajectory("gsc")


def test_a_tracked_run_trains_exactly_as_an_untracked_one():
    untracked = _train(_bn_dropout_mlp(), 7)
    model = _bn_dropout_mlp()
    tracker = gradlint.track(model, every=2)
    tracked = _train(model, 7, tracker)
    assert len(tracker.points) == 4
    a, b = untracked.state_dict(), tracked.state_dict()   # parameters and BatchNorm's running statistics
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    assert tracked.training and all(p.requires_grad for p in tracked.parameters())


def test_a_finding_appearing_mid_run_is_reported_at_its_step():
    torch.manual_seed(0)
    model = paper.mlp("tanh", 12, 32, 5)
    tracker = gradlint.track(model, every=1)
    x = torch.randn(64, 32, generator=torch.Generator().manual_seed(1))
    for step in range(5):
        if step == 3:  # tripled weights take the tanh stack into its chaotic phase: the gradient explodes
            with torch.no_grad():
                for layer in model[:-1]:
                    if isinstance(layer, nn.Linear):
                        layer.weight.mul_(3.0)
        tracker.step(x)
    codes = [{f.code for f in p.findings} for p in tracker.points]
    assert ["GL101" in c for c in codes] == [False, False, False, True, True]
    event = next(e for e in tracker.events() if e.code == "GL101")
    assert (event.step, event.kind, event.before, event.after) == (3, "appears", None, "info")
    assert event.value == tracker.points[3].summary.gsc_max >= event.threshold == 15.0
    assert "step 3: GL101 exploding-gradients appears" in tracker.report()
    assert [e.step for e in tracker.events() if e.code == "GL101"] == [3]   # said once, not at every step


def test_json_export_is_the_trajectory_and_the_same_twice(tmp_path):
    def run():
        model = _bn_dropout_mlp()
        tracker = gradlint.track(model, every=2, target="bn-mlp")
        _train(model, 5, tracker)
        return tracker

    first, second = run(), run()
    first.save(tmp_path / "a.json")
    second.save(tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    doc = json.loads((tmp_path / "a.json").read_text())
    lint_schema = json.loads(SCHEMA.read_text())
    track_schema = json.loads((ROOT / "docs" / "schema" / "gradlint-track-1.json").read_text())
    registry = referencing.Registry().with_resource(lint_schema["$id"], referencing.Resource.from_contents(lint_schema))
    jsonschema.Draft202012Validator.check_schema(track_schema)
    jsonschema.Draft202012Validator(track_schema, registry=registry).validate(doc)
    assert doc["schema"] == "gradlint-track/1" and doc["target"] == "bn-mlp" and doc["every"] == 2
    assert [p["step"] for p in doc["points"]] == [0, 2, 4]
    assert doc["points"][1]["summary"]["gsc_max"] == pytest.approx(first.points[1].summary.gsc_max, rel=1e-5)
    assert [e["code"] for e in doc["events"]] == [e.code for e in first.events()]


def test_a_failing_probe_is_recorded_and_training_goes_on():
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    tracker = gradlint.track(model, every=1)
    with pytest.warns(RuntimeWarning, match="probe at step 0 failed"):
        point = tracker.step(torch.randn(4, 5))     # the wrong width: the model itself would fail too
    assert point.summary is None and "mat1 and mat2" in point.error
    assert tracker.step(torch.randn(4, 8)).error is None
    assert "mat1 and mat2" in tracker.report().splitlines()[2]


def test_arguments_are_checked_and_batch_size_cuts_the_batch():
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(ValueError, match="every must be a positive integer"):
        gradlint.track(model, every=0)
    with pytest.raises(TypeError, match="batch_sise"):
        gradlint.track(model, batch_sise=8)
    tracker = gradlint.track(model, every=1, batch_size=16)
    tracker.step(torch.randn(64, 8))
    assert tracker.last.probe.batch_size == 16


@needs_matplotlib
def test_plot_writes_a_png(tmp_path):
    model = _bn_dropout_mlp()
    tracker = gradlint.track(model, every=2)
    _train(model, 5, tracker)
    tracker.plot(tmp_path / "a.png")
    tracker.plot(tmp_path / "b.png")
    data = (tmp_path / "a.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert data == (tmp_path / "b.png").read_bytes()
    with pytest.raises(gradlint.GradlintError, match="unsupported file type"):
        tracker.plot(tmp_path / "a.gif")


def test_importing_gradlint_imports_no_training_library():
    code = ("import sys, gradlint, gradlint.tracking, gradlint.callbacks; "
            "print(sorted(m for m in ('transformers', 'lightning', 'pytorch_lightning') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_hugging_face_callback_records_during_a_real_trainer_run(tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from gradlint.callbacks.huggingface import GradlintCallback

    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=64, n_positions=16, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0))

    class Tokens(torch.utils.data.Dataset):
        def __len__(self):
            return 64

        def __getitem__(self, i):
            ids = torch.randint(0, 64, (16,), generator=torch.Generator().manual_seed(i))
            return {"input_ids": ids, "labels": ids}

    callback = GradlintCallback(every=2, save=tmp_path / "track.json")
    args = transformers.TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=6, per_device_train_batch_size=8,
                                          report_to=[], use_cpu=True, save_strategy="no", logging_strategy="no",
                                          disable_tqdm=True)
    transformers.Trainer(model=model, args=args, train_dataset=Tokens(), callbacks=[callback]).train()
    tracker = callback.tracker
    assert [p.step for p in tracker.points] == [0, 2, 4]
    assert all(p.error is None and p.summary.gsc_max > 0 for p in tracker.points)
    assert [i.name for i in tracker.last.probe.inputs] == ["input_ids"]    # labels and num_items_in_batch dropped
    assert tracker.last.probe.input_shapes == ((8, 16),)
    assert tracker.last.output.selected == "logits"
    assert [p["step"] for p in json.loads((tmp_path / "track.json").read_text())["points"]] == [0, 2, 4]
    assert not model._forward_pre_hooks                                    # nothing left on the model


def test_lightning_callback_records_during_fit():
    lightning = pytest.importorskip("lightning")
    from gradlint.callbacks.lightning import GradlintCallback

    class Module(lightning.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = paper.mlp("batch-relu", 6, 32, 4)

        def training_step(self, batch, index):
            x, y = batch
            return F.cross_entropy(self.net(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(128, 32), torch.randint(0, 4, (128,)))
    callback = GradlintCallback(every=2, module="net")
    trainer = lightning.Trainer(max_steps=6, callbacks=[callback], accelerator="cpu", logger=False,
                                enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Module(), torch.utils.data.DataLoader(data, batch_size=16))
    tracker = callback.tracker
    assert [p.step for p in tracker.points] == [0, 2, 4]
    assert all(p.error is None and p.summary.gsc_max > 0 for p in tracker.points)
    assert tracker.last.probe.batch_size == 16 and tracker.subject.target == "Sequential"
