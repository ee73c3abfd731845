"""Word-level LSTM language model of the PyTorch examples (word_language_model, RNNModel).

Pattern: token ids -> Embedding -> dropout -> multi-layer LSTM (inter-layer dropout) -> dropout ->
Linear decoder over the vocabulary, flattened to (seq * batch, ntoken) and returned as
``F.log_softmax(decoded, dim=1)`` together with the new hidden state ``(h, c)``. The layout is
sequence-first: inputs are (bptt, batch) token ids, the hidden state comes from ``init_hidden(bsz)``
(zeros of shape (nlayers, bsz, nhid)). Optional weight tying (Press & Wolf 2016; Inan et al. 2016)
shares the decoder weight with the embedding.

Source: pytorch/examples, ``word_language_model/model.py`` (class ``RNNModel``), with the defaults of
``word_language_model/main.py``: ``--model LSTM --emsize 200 --nhid 200 --nlayers 2 --dropout 0.2``,
``--bptt 35``, ``--batch_size 20``, untied, on Wikitext-2 (vocabulary of 33,278 words). Rewritten here;
the GRU / RNN_TANH / RNN_RELU branches of the original are kept.

Published init (``init_weights``): embedding weight and decoder weight uniform(-0.1, 0.1), decoder
bias zero; the LSTM keeps PyTorch's default uniform(-1/sqrt(nhid), 1/sqrt(nhid)).

Known problem of the original: none for trainability. With main.py's defaults (plain SGD, lr 20,
gradient clipping 0.25, lr / 4 when validation loss stops improving) the example's README reports
"Train a LSTM on Wikitext-2 with CUDA, reaching perplexity of 117.61" after 6 epochs (110.44 tied,
87.17 tied after 40 epochs). The forward returns a tuple (log-probabilities, hidden state); the
log-probabilities are the tensor to analyse.

Expected linter verdict: trains with its published recipe, so no error is justified. The recurrent
depth is 35 time steps, but gating keeps the LSTM well-behaved; a linter that reads the probe along
the layer stack (embedding, 2 LSTM layers, decoder) should see a shallow, healthy network.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

NTOKENS = 33278  # Wikitext-2 vocabulary (data.Corpus on the repository's data/wikitext-2)
BPTT = 35
BATCH_SIZE = 20


class RNNModel(nn.Module):
    """Container module with an encoder, a recurrent module, and a decoder."""

    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.5, tie_weights=False):
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        if rnn_type in ("LSTM", "GRU"):
            self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        else:
            nonlinearities = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}
            if rnn_type not in nonlinearities:
                raise ValueError("rnn_type must be one of LSTM, GRU, RNN_TANH or RNN_RELU")
            self.rnn = nn.RNN(ninp, nhid, nlayers, nonlinearity=nonlinearities[rnn_type], dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)

        if tie_weights:
            if nhid != ninp:
                raise ValueError("When using the tied flag, nhid must be equal to emsize")
            self.decoder.weight = self.encoder.weight

        self.init_weights()
        self.rnn_type = rnn_type
        self.nhid = nhid
        self.nlayers = nlayers

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output).view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        if self.rnn_type == "LSTM":
            return (
                weight.new_zeros(self.nlayers, bsz, self.nhid),
                weight.new_zeros(self.nlayers, bsz, self.nhid),
            )
        return weight.new_zeros(self.nlayers, bsz, self.nhid)


def build():
    """main.py's default LSTM: 2 x 200 on Wikitext-2 (about 13.9M parameters, 13.3M of them in the
    embedding and the decoder)."""
    return RNNModel("LSTM", NTOKENS, 200, 200, 2, dropout=0.2, tie_weights=False)


def small():
    """Same model and init: 1 LSTM layer of 32, vocabulary 500."""
    return RNNModel("LSTM", 500, 32, 32, 1, dropout=0.2)


def example_inputs(model):
    """One bptt window of the training loop: (35, 20) token ids and model.init_hidden(20)."""
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.ntoken, (BPTT, BATCH_SIZE), generator=gen)
    return (ids, model.init_hidden(BATCH_SIZE))


if __name__ == "__main__":
    m = build()
    print(sum(p.numel() for p in m.parameters()), "parameters")
    out, hidden = m(*example_inputs(m))
    print(tuple(out.shape), [tuple(h.shape) for h in hidden])
