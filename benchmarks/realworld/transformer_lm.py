"""Word-level Transformer language model of the PyTorch examples (word_language_model, TransformerModel).

Pattern: a subclass of ``nn.Transformer`` that uses only the encoder stack as a causal language
model: token ids -> Embedding * sqrt(ninp) -> sinusoidal PositionalEncoding (+ dropout) ->
``self.encoder`` (post-norm ``TransformerEncoderLayer`` x nlayers plus the final encoder LayerNorm that
``nn.Transformer`` builds) with a square causal float mask built inside ``forward`` -> Linear
``decoder`` over the vocabulary -> ``F.log_softmax(output, dim=-1)``. Sequence-first: ``src`` is
(seq, batch) token ids, the output (seq, batch, ntoken). The subclass assigns ``self.decoder =
nn.Linear(...)``, which replaces the 6-layer ``TransformerDecoder`` that ``nn.Transformer.__init__``
built under the same attribute name, so no decoder stack remains.

Source: pytorch/examples, ``word_language_model/model.py`` (classes ``PositionalEncoding`` and
``TransformerModel``), sized with the ``--model Transformer`` defaults of
``word_language_model/main.py``: emsize 200, nhid 200, nlayers 2, nhead 2, dropout 0.2, on
Wikitext-2 (33,278 words). Rewritten here.

Published init: ``nn.Transformer.__init__`` runs xavier_uniform_ on every parameter with dim > 1 of
the encoder (and of the decoder it then discards); ``init_weights`` sets the input embedding to
uniform(-0.1, 0.1), the output Linear weight to uniform(-0.1, 0.1) and its bias to zero.

Known problem of the original: none for trainability; main.py trains it with the same SGD recipe
as the LSTM (lr 20, clipping 0.25). Note the module order: the encoder layers come before the
embedding in ``named_modules()`` (``nn.Transformer.__init__`` registers them first), although the
first operation applied to ``src`` is the Embedding. No ``example_inputs`` is defined here on
purpose: a user expects a linter to feed token ids of shape (seq, batch).

Expected linter verdict: trains with its published recipe, so no error is justified.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

NTOKENS = 33278  # Wikitext-2 vocabulary


class PositionalEncoding(nn.Module):
    """Adds sin/cos position codes to (seq, batch, d_model) inputs, then dropout."""

    def __init__(self, d_model, dropout=0.1, max_len=5000):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe.unsqueeze(1))  # (max_len, 1, d_model)

    def forward(self, x):
        x = x + self.pe[: x.size(0), :]
        return self.dropout(x)


class TransformerModel(nn.Transformer):
    """Container module with an encoder, a recurrent or transformer module, and a decoder."""

    def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.5):
        super().__init__(d_model=ninp, nhead=nhead, dim_feedforward=nhid, num_encoder_layers=nlayers)
        self.model_type = "Transformer"
        self.src_mask = None
        self.pos_encoder = PositionalEncoding(ninp, dropout)
        self.input_emb = nn.Embedding(ntoken, ninp)
        self.ninp = ninp
        self.decoder = nn.Linear(ninp, ntoken)
        self.init_weights()

    def _generate_square_subsequent_mask(self, sz):
        # float mask: 0.0 where position i may attend to j (j <= i), -inf above the diagonal
        allowed = torch.tril(torch.ones(sz, sz)) == 1
        return torch.zeros(sz, sz).masked_fill(~allowed, float("-inf"))

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.input_emb.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, src, has_mask=True):
        if has_mask:
            device = src.device
            if self.src_mask is None or self.src_mask.size(0) != len(src):
                self.src_mask = self._generate_square_subsequent_mask(len(src)).to(device)
        else:
            self.src_mask = None

        src = self.input_emb(src) * math.sqrt(self.ninp)
        src = self.pos_encoder(src)
        output = self.encoder(src, mask=self.src_mask)
        output = self.decoder(output)
        return F.log_softmax(output, dim=-1)


def build():
    """main.py's Transformer defaults on Wikitext-2 (about 13.8M parameters)."""
    return TransformerModel(NTOKENS, 200, 2, 200, 2, dropout=0.2)


def small():
    """Same model and init: 1 layer, width 32, 2 heads, vocabulary 500."""
    return TransformerModel(500, 32, 2, 64, 1, dropout=0.2)


if __name__ == "__main__":
    m = build()
    print(sum(p.numel() for p in m.parameters()), "parameters")
    ids = torch.randint(0, NTOKENS, (35, 20), generator=torch.Generator().manual_seed(0))
    print(tuple(m(ids).shape))
