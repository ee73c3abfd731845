"""Traceable forwards for torch.nn's composite modules, so torch.fx sees their layers.

torch.fx's default rule makes every torch.nn module a leaf, and the real forwards of
``nn.TransformerEncoder`` and friends branch on tensor properties (fast paths, nested tensors,
mask detection), which symbolic tracing cannot follow.  Each function below is the module's own
training-mode computation (its "slow path", dropout aside) written so it traces: the input and
output projections of ``nn.MultiheadAttention`` become layers, and attention itself is one op
(``attention``) that runs eagerly, masks and all.  A configuration not covered here
(``bias_k``/``bias_v``, ``add_zero_attn``) keeps the module a leaf.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F


def traceable(module: nn.Module) -> bool:
    """Whether gradlint traces through ``module`` with a forward of its own."""
    forward = _FORWARDS.get(type(module))
    if forward is None:
        return False
    if isinstance(module, nn.MultiheadAttention):
        return module.bias_k is None and module.bias_v is None and not module.add_zero_attn
    return True


def forward_of(module: nn.Module) -> Callable:
    return _FORWARDS[type(module)]


def attention(q, k, v, num_heads: int, batch_first: bool, key_padding_mask, attn_mask, need_weights: bool,
              average_attn_weights: bool, is_causal: bool):
    """Multi-head attention of projected q, k, v (``F.multi_head_attention_forward`` between its
    projections), eager: returns (output before the output projection, attention weights or None)."""
    is_causal = bool(is_causal)  # None (a default left unset) means no causal hint
    if batch_first:
        q, k, v = (t.transpose(0, 1) for t in (q, k, v))
    tgt_len, bsz, embed_dim = q.shape
    src_len = k.shape[0]
    head_dim = embed_dim // num_heads
    key_padding_mask = F._canonical_mask(mask=key_padding_mask, mask_name="key_padding_mask",
                                         other_type=F._none_or_dtype(attn_mask), other_name="attn_mask",
                                         target_type=q.dtype)
    if is_causal and attn_mask is None:
        raise RuntimeError("need attn_mask if specifying the is_causal hint")
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None
    else:
        attn_mask = F._canonical_mask(mask=attn_mask, mask_name="attn_mask", other_type=None, other_name="",
                                      target_type=q.dtype, check_other=False)
        if key_padding_mask is not None:
            is_causal = False
    if attn_mask is not None and attn_mask.dim() == 2:
        attn_mask = attn_mask.unsqueeze(0)
    q = q.reshape(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.reshape(src_len, bsz * num_heads, head_dim).transpose(0, 1)
    v = v.reshape(src_len, bsz * num_heads, head_dim).transpose(0, 1)
    if key_padding_mask is not None:
        key_padding_mask = (key_padding_mask.view(bsz, 1, 1, src_len).expand(-1, num_heads, -1, -1)
                            .reshape(bsz * num_heads, 1, src_len))
        attn_mask = key_padding_mask if attn_mask is None else attn_mask + key_padding_mask
    if need_weights:
        q_scaled = q * math.sqrt(1.0 / float(head_dim))
        if attn_mask is not None:
            weights = torch.baddbmm(attn_mask, q_scaled, k.transpose(-2, -1))
        else:
            weights = torch.bmm(q_scaled, k.transpose(-2, -1))
        weights = F.softmax(weights, dim=-1)
        out = torch.bmm(weights, v).transpose(0, 1).reshape(tgt_len, bsz, embed_dim)
        weights = weights.view(bsz, num_heads, tgt_len, src_len)
        if average_attn_weights:
            weights = weights.mean(dim=1)
    else:
        if attn_mask is not None:
            attn_mask = attn_mask.unsqueeze(0) if attn_mask.size(0) == 1 and attn_mask.dim() == 3 else \
                attn_mask.view(bsz, num_heads, -1, src_len)
        q = q.view(bsz, num_heads, tgt_len, head_dim)
        k = k.view(bsz, num_heads, src_len, head_dim)
        v = v.view(bsz, num_heads, src_len, head_dim)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask, 0.0, is_causal)
        out = out.permute(2, 0, 1, 3).reshape(tgt_len, bsz, embed_dim)
        weights = None
    if batch_first:
        out = out.transpose(0, 1)
    return out, weights


fx.wrap("attention")   # one op in the traced graph, run eagerly


def _multihead_attention(m: nn.MultiheadAttention, query, key, value, key_padding_mask=None, need_weights=True,
                         attn_mask=None, average_attn_weights=True, is_causal=False):
    if m._qkv_same_embed_dim:
        if query is key and key is value:
            q, k, v = F.linear(query, m.in_proj_weight, m.in_proj_bias).chunk(3, dim=-1)
        else:
            w_q, w_k, w_v = m.in_proj_weight.chunk(3)
            b_q, b_k, b_v = m.in_proj_bias.chunk(3) if m.in_proj_bias is not None else (None, None, None)
            q, k, v = F.linear(query, w_q, b_q), F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)
    else:
        b_q, b_k, b_v = m.in_proj_bias.chunk(3) if m.in_proj_bias is not None else (None, None, None)
        q = F.linear(query, m.q_proj_weight, b_q)
        k = F.linear(key, m.k_proj_weight, b_k)
        v = F.linear(value, m.v_proj_weight, b_v)
    out, weights = attention(q, k, v, m.num_heads, m.batch_first, key_padding_mask, attn_mask, need_weights,
                             average_attn_weights, is_causal)
    return m.out_proj(out), weights


def _encoder_layer(m: nn.TransformerEncoderLayer, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
    x = src
    if m.norm_first:
        x = x + m._sa_block(m.norm1(x), src_mask, src_key_padding_mask, is_causal=is_causal)
        x = x + m._ff_block(m.norm2(x))
    else:
        x = m.norm1(x + m._sa_block(x, src_mask, src_key_padding_mask, is_causal=is_causal))
        x = m.norm2(x + m._ff_block(x))
    return x


def _decoder_layer(m: nn.TransformerDecoderLayer, tgt, memory, tgt_mask=None, memory_mask=None,
                   tgt_key_padding_mask=None, memory_key_padding_mask=None, tgt_is_causal=False,
                   memory_is_causal=False):
    x = tgt
    if m.norm_first:
        x = x + m._sa_block(m.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
        x = x + m._mha_block(m.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal)
        x = x + m._ff_block(m.norm3(x))
    else:
        x = m.norm1(x + m._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
        x = m.norm2(x + m._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
        x = m.norm3(x + m._ff_block(x))
    return x


def _encoder(m: nn.TransformerEncoder, src, mask=None, src_key_padding_mask=None, is_causal=None):
    output = src
    for layer in m.layers:
        output = layer(output, src_mask=mask, is_causal=False if is_causal is None else is_causal,
                       src_key_padding_mask=src_key_padding_mask)
    return m.norm(output) if m.norm is not None else output


def _decoder(m: nn.TransformerDecoder, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
             memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
    output = tgt
    for layer in m.layers:
        output = layer(output, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                       tgt_key_padding_mask=tgt_key_padding_mask, memory_key_padding_mask=memory_key_padding_mask,
                       tgt_is_causal=False if tgt_is_causal is None else tgt_is_causal,
                       memory_is_causal=memory_is_causal)
    return m.norm(output) if m.norm is not None else output


def _transformer(m: nn.Transformer, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
                 src_key_padding_mask=None, tgt_key_padding_mask=None, memory_key_padding_mask=None,
                 src_is_causal=None, tgt_is_causal=None, memory_is_causal=False):
    memory = m.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal)
    return m.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                     tgt_key_padding_mask=tgt_key_padding_mask, memory_key_padding_mask=memory_key_padding_mask,
                     tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)


_FORWARDS: dict[type, Callable] = {
    nn.MultiheadAttention: _multihead_attention,
    nn.TransformerEncoderLayer: _encoder_layer,
    nn.TransformerDecoderLayer: _decoder_layer,
    nn.TransformerEncoder: _encoder,
    nn.TransformerDecoder: _decoder,
    nn.Transformer: _transformer,
}
