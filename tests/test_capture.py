"""Capture tiers: torch.fx through torch.nn composites, torch.export, hooks; one contract for all three."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import gradlint
from gradlint import probe
from gradlint.assemble import Subject
from gradlint.settings import Probe
from gradlint.capture import exported_graph, static_graph
from gradlint.inputs import ProbeInputs

from reference_models import gaussian

pytestmark = pytest.mark.probe


def _lint(model, *inputs, **kwargs):
    return gradlint.lint(model, inputs if len(inputs) != 1 else inputs[0], **kwargs)


def _codes(result, severity=None):
    return {f.code for f in result.findings if severity is None or f.severity == severity}


class EncoderModel(nn.Module):
    """Linear -> nn.TransformerEncoder(4 post-norm layers) -> Linear, the way users wrap it."""

    def __init__(self, layers=4, width=32, dropout=0.1):
        super().__init__()
        self.inp = nn.Linear(16, width)
        layer = nn.TransformerEncoderLayer(width, 4, 2 * width, dropout=dropout, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(width, 8)

    def forward(self, x):
        return self.out(self.enc(self.inp(x)))


def test_transformer_encoder_inside_a_user_model_is_seen_whole():
    torch.manual_seed(0)
    model = EncoderModel()
    result = _lint(model, gaussian(16, 10, 16))
    rep = result.report
    names = {x.name for x in rep.layers}
    assert rep.trace == "fx"
    # input projection, 4 x (attention in/out projection + two feed-forward layers), output layer
    assert rep.summary.compositional_depth == 1 + 4 * 4 + 1
    assert len(rep.residual_blocks) == 8
    assert {"enc.layers.0.self_attn.in_proj", "enc.layers.0.self_attn.out_proj", "enc.layers.3.linear1",
            "enc.layers.3.linear2", "enc.layers.3.norm2"} <= names
    assert rep.summary.parameter_coverage == 1.0
    # nn.TransformerEncoder deep-copies its layer: every layer starts from the same weights
    clones = [f for f in result.findings if f.code == "GL302"]
    assert len(clones) == 4 and all("4 layers start with identical" in f.message for f in clones)
    assert all(b.branch_share is not None for b in rep.residual_blocks)


def test_traced_transformer_computes_what_the_module_computes():
    torch.manual_seed(0)
    model = EncoderModel(dropout=0.0).eval()
    x = gaussian(4, 7, 16)
    gm = static_graph(model).gm
    with torch.no_grad():
        assert torch.allclose(gm(x), model(x), atol=1e-5)

    class Seq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.t = nn.Transformer(32, 4, 2, 2, 64, dropout=0.0, batch_first=True)
            self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(5))

        def forward(self, src, tgt):
            return self.t(src, tgt, tgt_mask=self.mask)

    seq2seq = Seq2Seq().eval()
    src, tgt = gaussian(3, 7, 32), gaussian(3, 5, 32)
    graph = static_graph(seq2seq)
    with torch.no_grad():
        assert torch.allclose(graph.gm(src, tgt), seq2seq(src, tgt), atol=1e-5)
    # Two inputs: the data path starts at tgt (src meets it in every cross-attention, tgt only at the start),
    # and src's residual stream up to the memory is an encoder stream: both streams' blocks are found
    st = graph.structure
    assert st.streams == {"src": "encoder", "tgt": "data"}
    assert len(st.merges) == 2 * 2 + 2 * 3
    assert {m.block_input for m in st.merges if m.block_input in ("src", "tgt")} == {"src", "tgt"}
    assert "t_encoder_norm" in st.spine and "t_decoder_norm" in st.spine
    # nn.Transformer as the model itself: its own forward is replaced for the trace too
    rep = gradlint.lint(seq2seq.t, (src, tgt)).report
    # longest path: 2 encoder layers (4 each), then memory through decoder layer 0's cross-attention and MLP
    # (2 + 2) and all of decoder layer 1 (6)
    assert rep.trace == "fx" and rep.summary.compositional_depth == 2 * 4 + 4 + 6


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kdim", [None, 24])
def test_multihead_attention_projections_are_layers_and_attention_is_one_op(batch_first, kdim):
    torch.manual_seed(0)

    class Attend(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(32, 4, kdim=kdim, vdim=kdim, batch_first=batch_first)

        def forward(self, q, kv, mask):
            return self.attn(q, kv, kv, key_padding_mask=mask)

    model = Attend().eval()
    q, kv = gaussian(5, 3, 32), gaussian(6, 3, kdim or 32)
    if batch_first:
        q, kv = q.transpose(0, 1).contiguous(), kv.transpose(0, 1).contiguous()
    mask = torch.zeros(3, 6, dtype=torch.bool)
    mask[:, -1] = True
    graph = static_graph(model)
    with torch.no_grad():
        out, weights = model(q, kv, mask)
        traced_out, traced_weights = graph.gm(q, kv, mask)
    assert torch.allclose(traced_out, out, atol=1e-5) and torch.allclose(traced_weights, weights, atol=1e-6)
    layers = [n.name for n in graph.nodes.values() if n.layers]
    projections = ["attn.in_proj", "attn.in_proj_1", "attn.in_proj_2"] if kdim is None else \
        ["attn.q_proj", "attn.k_proj", "attn.v_proj"]
    assert layers == projections + ["attn.out_proj"]
    assert sum(n.op == "attention" for n in graph.nodes.values()) == 1
    assert graph.structure.compositional_depth == 2      # a projection, attention, the output projection


def test_stacked_bidirectional_lstm_counts_each_stacked_layer():
    torch.manual_seed(0)

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(8, 16)
            self.rnn = nn.LSTM(16, 16, num_layers=3, bidirectional=True, batch_first=True)
            self.out = nn.Linear(32, 4)

        def forward(self, x):
            h, _ = self.rnn(self.inp(x))
            return self.out(h)

    rep = _lint(Tagger(), gaussian(16, 12, 8)).report
    rnn = rep.layer("rnn")
    assert rnn is not None and rnn.kind == "layer" and rnn.layers == 3
    assert rep.summary.compositional_depth == 1 + 3 + 1
    assert rep.summary.parameter_coverage == 1.0 and rnn.gsc is not None and rnn.orthogonality_defect is not None


class TinyGPT(nn.Module):
    """A GPT-style decoder in plain torch: tied embeddings, causal attention, a dict output."""

    def __init__(self, vocab=100, width=32, blocks=2, context=16):
        super().__init__()
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Embedding(context, width)
        self.blocks = nn.ModuleList(nn.ModuleDict({
            "ln1": nn.LayerNorm(width), "qkv": nn.Linear(width, 3 * width), "proj": nn.Linear(width, width),
            "ln2": nn.LayerNorm(width), "fc": nn.Linear(width, 4 * width), "out": nn.Linear(4 * width, width),
        }) for _ in range(blocks))
        self.ln = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.tok.weight
        self.register_buffer("causal", torch.tril(torch.ones(context, context, dtype=torch.bool)))

    def forward(self, input_ids):
        t = input_ids.shape[1]
        x = self.tok(input_ids) + self.pos(torch.arange(t, device=input_ids.device))
        for b in self.blocks:
            q, k, v = b["qkv"](b["ln1"](x)).chunk(3, dim=-1)
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
            scores = scores.masked_fill(~self.causal[:t, :t], float("-inf"))
            x = x + b["proj"](scores.softmax(-1) @ v)
            x = x + b["out"](F.gelu(b["fc"](b["ln2"](x))))
        return {"logits": self.head(self.ln(x)), "hidden": x}


def test_gpt_style_decoder_with_tied_embeddings_and_dict_output():
    torch.manual_seed(0)
    ids = torch.randint(0, 100, (8, 16), generator=torch.Generator().manual_seed(1))
    result = gradlint.lint(TinyGPT(), example_inputs={"input_ids": ids})
    rep = result.report
    assert rep.trace == "export"        # slicing a buffer by a sequence length defeats torch.fx (nanoGPT does it)
    assert len(rep.residual_blocks) == 4
    assert rep.summary.parameter_coverage == 1.0          # the tied weight counts once, and it was seen
    assert "GL302" not in _codes(result)                   # tying is not copying
    assert rep.layer("head").weight == "tok.weight"
    assert rep.summary.gsc_input is not None and math.isfinite(rep.summary.gsc_input)


class ShapeBranching(nn.Module):
    """Python that reads a shape: torch.fx cannot trace it, torch.export can (shapes are static there)."""

    def __init__(self, width=32, blocks=3):
        super().__init__()
        self.inp = nn.Linear(16, width)
        self.blocks = nn.ModuleList(nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(),
                                                  nn.Linear(width, width)) for _ in range(blocks))
        self.out = nn.Linear(width, 4)

    def forward(self, x):
        if x.shape[-1] > 8:
            x = self.inp(x)
        for block in self.blocks:
            x = x + 0.5 * block(x)
        return self.out(x)


def test_a_model_fx_cannot_trace_is_captured_by_torch_export():
    torch.manual_seed(0)
    result = _lint(ShapeBranching(), gaussian(32, 16))
    rep = result.report
    assert rep.trace == "export" and "torch.fx could not trace" in rep.trace_note
    assert not [f for f in result.findings if f.code == "GL001"]  # a complete capture: the header names the tier
    assert len(rep.residual_blocks) == 3 and all(b.branch_share is not None for b in rep.residual_blocks)
    names = {x.name for x in rep.layers}
    assert {"inp", "blocks.0.1", "blocks.2.3", "blocks.1.2", "blocks.1.0", "out"} <= names
    assert rep.layer("blocks.0.1").op == "Linear" and rep.layer("blocks.1.2").kind == "nonlinearity"
    assert rep.summary.compositional_depth == 1 + 3 * 2 + 1 and rep.summary.parameter_coverage == 1.0


class Traceable(ShapeBranching):
    def forward(self, x):
        x = self.inp(x)
        for block in self.blocks:
            x = x + 0.5 * block(x)
        return self.out(x)


def test_export_tier_gives_the_fx_tier_gsc_profile():
    torch.manual_seed(0)
    model, x = Traceable(), gaussian(32, 16)
    inputs = ProbeInputs.of(x)
    subject, settings = Subject("m"), Probe(draws=4).resolved()
    by_fx = probe.run(model, inputs, subject, settings).report
    exported = exported_graph(model, inputs.args, inputs.kwargs)
    by_export = probe.run(model, inputs, subject, settings, graph=exported).report
    assert (by_fx.trace, by_export.trace) == ("fx", "export")
    fx_points = {x.name: x.gsc for x in by_fx.layers if x.gsc is not None}
    export_points = {x.name: x.gsc for x in by_export.layers if x.gsc is not None}
    assert fx_points.keys() == export_points.keys() and len(fx_points) >= 16
    assert [x.name for x in by_fx.layers if x.spine] == [x.name for x in by_export.layers if x.spine]
    for name, value in fx_points.items():
        assert export_points[name] == pytest.approx(value, rel=0.01), name
    assert [b.merge for b in by_fx.residual_blocks] == [b.merge for b in by_export.residual_blocks]
    assert by_fx.summary.compositional_depth == by_export.summary.compositional_depth


def test_data_dependent_branch_falls_back_to_hooks_and_says_why_each_tier_failed():
    from gradlint.rules.gl001_trace_fallback import untraceable_model

    model, (x,) = untraceable_model()
    result = _lint(model, x)
    assert result.report.trace == "hooks"
    (gl001,) = [f for f in result.findings if f.code == "GL001"]
    assert "torch.fx could not trace" in gl001.message and "torch.export could not capture" in gl001.message
    assert "treated them as a chain" in gl001.message


def test_custom_autograd_function_is_opaque_runs_its_own_backward_and_errs_on_coverage():
    from gradlint.rules.gl005_unmeasured_parameters import opaque_function_model

    model, (x,) = opaque_function_model()
    result = _lint(model, x)
    rep = result.report
    assert rep.trace == "fx" and rep.summary.parameter_coverage < 0.5
    name, count, why = rep.unmeasured[0]
    assert (name, count) == ("weight", 64 * 64) and "read only by ScaledMatmul.apply" in why
    # most of the model unmeasured is no pass: an error that names the module and why
    (gl005,) = [f for f in result.findings if f.code == "GL005"]
    assert gl005.severity == "error" and "weight (4,096): read only by ScaledMatmul.apply" in gl005.message

    class Doubling(torch.autograd.Function):
        """Forward is x @ w.T; the backward doubles the gradient (only the real apply does that)."""

        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(w)
            return x @ w.t()

        @staticmethod
        def backward(ctx, grad):
            (w,) = ctx.saved_tensors
            return 2 * grad @ w, None

    class Model(nn.Module):
        def __init__(self, custom):
            super().__init__()
            self.w = nn.Parameter(torch.eye(16))
            self.head = nn.Linear(16, 4)
            self.custom = custom

        def forward(self, x):
            h = Doubling.apply(x, self.w) if self.custom else x @ self.w.t()
            return self.head(h)

    torch.manual_seed(0)
    plain, custom = Model(False), Model(True)
    custom.load_state_dict(plain.state_dict())
    x = gaussian(64, 16)
    assert _lint(custom, x).report.summary.gsc_input == pytest.approx(2 * _lint(plain, x).report.summary.gsc_input)


def test_dropout_is_off_and_normalisation_uses_batch_statistics_during_the_probe():
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self, p):
            super().__init__()
            self.a, self.bn, self.drop, self.b = nn.Linear(16, 32), nn.BatchNorm1d(32), nn.Dropout(p), nn.Linear(32, 4)
            self.p = p

        def forward(self, x):
            h = self.drop(torch.relu(self.bn(self.a(x))))
            return self.b(F.dropout(h, self.p, self.training))

    with_dropout, without = Net(0.9), Net(0.0)
    without.load_state_dict(with_dropout.state_dict())
    x = gaussian(64, 16)
    a, b = _lint(with_dropout, x).report, _lint(without, x).report
    assert [x.gsc for x in a.layers] == [x.gsc for x in b.layers]
    assert a.layer("bn").gsc is not None
    assert torch.equal(with_dropout.bn.running_mean, torch.zeros(32))  # the model is left as it was


@dataclass
class Prediction:
    scores: torch.Tensor
    aux: tuple
    label: torch.Tensor


def test_output_is_every_floating_tensor_of_tuples_dicts_and_dataclasses():
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(16, 16), nn.Linear(16, 4)

        def forward(self, x):
            h = self.a(x)
            return Prediction(self.b(h), ({"h": h},), h.argmax(-1))

    net, x = Net(), gaussian(32, 16)
    rep = gradlint.lint(net, x, draws=64).report

    def gsc_at_input(f):
        jac = torch.autograd.functional.jacobian(f, x)
        return float(jac.norm() / math.sqrt(x.numel()) * x.norm() / f(x).norm())

    both = gsc_at_input(lambda v: torch.cat([net.b(net.a(v)).flatten(), net.a(v).flatten()]))
    scores_only = gsc_at_input(lambda v: net.b(net.a(v)))
    assert abs(both - scores_only) > 0.1 * both            # the rule matters for this model
    assert rep.layer("x").gsc == pytest.approx(both, rel=0.1)


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_file_with_dict_example_inputs_named_by_an_absolute_path(tmp_path, gradlint):
    src = tmp_path / "keywords.py"
    src.write_text(
        "import torch\n"
        "import torch.nn as nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.a, self.b = nn.Linear(8, 16), nn.Linear(16, 4)\n"
        "    def forward(self, x, scale=None):\n"
        "        h = torch.relu(self.a(x))\n"
        "        return self.b(h if scale is None else h * scale)\n"
        "def example_inputs():\n"
        "    return {'x': torch.randn(32, 8), 'scale': torch.full((32, 1), 2.0)}\n")
    run = gradlint(str(src), "--format", "json")
    assert run.code in (0, 1), run.stderr
    (r,) = run.json()["results"]
    assert r["probe"]["input_source"] == "example_inputs"
    assert r["probe"]["input_shapes"] == [[32, 8], [32, 1]]
    assert r["target"].endswith("keywords.py:Net") and not r["target"].startswith("/")
    assert not [s for s in _strings(run.json()) if s.startswith("/") or str(tmp_path) in s.split("..")[0]]


@pytest.mark.parametrize("tier_model", ["fx", "export"])
def test_a_probe_over_the_memory_budget_is_cut_to_fit_and_says_so(tier_model, monkeypatch):
    from gradlint import memory

    torch.manual_seed(0)
    if tier_model == "fx":
        model, inputs = Traceable(), gaussian(64, 16)
    else:
        model, inputs = ShapeBranching(), gaussian(64, 16)
    full = gradlint.lint(model, inputs).report
    assert full.probe.reduced_from is None and full.probe.batch_size == 64
    # Pretend a tenth of the memory the full probe's values take is available (half of it is the budget).
    needed = 64 * 4 * (16 + 32 * 30)
    monkeypatch.setattr(memory, "available", lambda device: needed / 10)
    rep = gradlint.lint(model, inputs).report
    assert rep.trace == tier_model
    assert rep.probe.reduced_from == ((64, 16),) and 2 <= rep.probe.batch_size < 16
    assert "batch cut from 64" in rep.probe.reduced_why
    # An explicit batch size is the batch probed
    explicit = gradlint.lint(model, inputs, batch_size=64).report
    assert explicit.probe.reduced_from is None and explicit.probe.batch_size == 64


def scaled_projection(x, w):
    """A library function torch.fx keeps opaque (as torchvision does with Swin's window attention)."""
    return (x @ w.t()) * 0.5


torch.fx.wrap("scaled_projection")


def test_parameters_inside_a_torch_fx_wrapped_function_are_seen_through_torch_export():
    torch.manual_seed(0)

    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(8, 32)
            self.w = nn.Parameter(torch.randn(32, 32) / 6)
            self.out = nn.Linear(32, 4)

        def forward(self, x):
            return self.out(torch.relu(scaled_projection(self.inp(x), self.w)))

    result = _lint(Wrapped(), gaussian(32, 8))
    rep = result.report
    assert rep.trace == "export" and "scaled_projection" in rep.trace_note
    assert rep.summary.parameter_coverage == 1.0 and rep.summary.compositional_depth == 3
    assert "GL005" not in _codes(result)
