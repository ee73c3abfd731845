"""Hugging Face transformers, small configs: captured as a graph (torch.export), every residual block seen.

Needs the `hf` test extra (`pip install -e ".[dev,hf]"`); skipped cleanly without transformers.
"""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.probe

transformers = pytest.importorskip("transformers")

import gradlint  # noqa: E402

LAYERS = 2
VOCAB = 1000


def _gpt2():
    cfg = transformers.GPT2Config(vocab_size=VOCAB, n_embd=64, n_layer=LAYERS, n_head=4, n_positions=64,
                                  use_cache=False, bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(cfg)


def _bert():
    cfg = transformers.BertConfig(vocab_size=VOCAB, hidden_size=128, num_hidden_layers=LAYERS, num_attention_heads=4,
                                  intermediate_size=256, max_position_embeddings=64)
    return transformers.BertModel(cfg)


def _llama():
    cfg = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=LAYERS,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                   use_cache=False)
    return transformers.LlamaForCausalLM(cfg)


def _qwen2():
    cfg = transformers.Qwen2Config(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=LAYERS,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                   use_cache=False)
    return transformers.Qwen2ForCausalLM(cfg)


# model factory, a projection every block has, the block's nonlinearity
MODELS = {
    "gpt2": (_gpt2, "transformer.h.1.mlp.c_fc", "tanh"),          # its GELU is computed through tanh
    "bert": (_bert, "encoder.layer.1.attention.self.query", "gelu"),
    "llama": (_llama, "model.layers.1.self_attn.q_proj", "silu"),
    "qwen2": (_qwen2, "model.layers.1.self_attn.q_proj", "silu"),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_hugging_face_model_is_analysed_on_a_graph_with_every_residual_block(name):
    build, projection, act = MODELS[name]
    torch.manual_seed(0)
    model = build()
    ids = torch.randint(0, VOCAB, (8, 32), generator=torch.Generator().manual_seed(1))
    result = gradlint.lint(model, example_inputs={"input_ids": ids})
    rep = result.report
    assert rep.trace == "export", rep.trace_note
    assert len(rep.residual_blocks) == 2 * LAYERS              # attention and MLP in every layer
    assert all(b.branch_share is not None for b in rep.residual_blocks)
    assert rep.summary.parameter_coverage >= 0.9
    layer = rep.layer(projection)
    assert layer is not None and layer.kind == "layer" and layer.gsc is not None
    assert any(x.kind == "nonlinearity" and act in x.op.lower() for x in rep.layers)
    assert rep.summary.effective_depth is not None and rep.summary.spine_points >= 2 * LAYERS
