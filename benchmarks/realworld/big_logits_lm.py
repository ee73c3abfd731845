"""Character-level GPT of Karpathy's nanoGPT lecture with a tied, un-initialised output head: logits far
too large at initialisation.

Pattern: a decoder-only Transformer over characters (tiny Shakespeare, 65 symbols): token embedding +
learned position embedding, ``n_layer`` pre-LayerNorm blocks (multi-head causal self-attention built
from per-head ``Head`` modules, then a ReLU feed-forward of width 4 n_embd), a final LayerNorm and a
Linear ``lm_head`` to the vocabulary. Sizes of the lecture's final script: n_embd 384, n_head 6,
n_layer 6, block_size 256, dropout 0.2 (10.8M parameters).

Source: karpathy/ng-video-lecture, ``gpt.py`` (classes ``Head``, ``MultiHeadAttention``,
``FeedFoward``, ``Block``, ``GPTLanguageModel``; an older revision names the model
``BigramLanguageModel``). Its README says the code lacks proper initialisation: "NOTE: sadly I did not
go too much into model initialization in the video lecture, but it is quite important for good
performance. The current code will train and work fine, but its convergence is slower because it
starts off in a not great spot in the weight space. Please see nanoGPT model.py for ``# init all
weights`` ..." Rewritten here, with one change a user typically makes next: weight tying of the output
head to the token embedding (GPT-2 / nanoGPT share these matrices; here written
``self.lm_head.weight = self.token_embedding_table.weight``, the direction pytorch/examples'
word_language_model uses, ``decoder.weight = encoder.weight``) without copying nanoGPT's
``_init_weights`` (normal(0, 0.02) for every Linear and Embedding), which is what makes tying safe
there.

Init used: PyTorch defaults only. nn.Embedding is N(0, 1), so the shared head has rows of norm about
sqrt(n_embd) = 19.6, and the final LayerNorm hands it features of norm about 19.6: a typical logit has
standard deviation about 19.6, and the logit of the token being read (whose embedding is still the
largest component of the residual stream after 6 pre-norm blocks) is about n_embd / sqrt(2) = 270.
(The untied lecture model keeps nn.Linear's default head, weight std 1/sqrt(3 n_embd), whose logits
have std about 0.58.)

Known problem, measured (``init_loss`` below: eval mode, 16 x 256 uniformly random tokens and targets,
seed 0): cross-entropy at initialisation 244.2 nats for this file, against ln(65) = 4.17 for a
uniform prediction; the model confidently predicts "the next character repeats the current one". The
untied original measures 4.33, only slightly above ln(65): the README's "not great spot" is mild,
the tying without re-initialisation is what makes the logits far too large. ``small()`` (n_embd 64)
measures 42.4 nats. Training still starts (Adam shrinks the embedding norms) but wastes the first
steps undoing the init, and with SGD the initial gradients of the tied matrix are of order the
logit scale.

Expected linter verdict: a finding that the output logits (or the head's input x weight scale) are
far too large at init, e.g. a warning naming ``lm_head`` with the fix "initialise the embedding /
head with std 0.02 (or scale the tied head by 1/sqrt(n_embd))". The residual stack itself is healthy
(pre-LayerNorm blocks), so gradient explosion or collapse errors would be false positives.
"""

import torch
import torch.nn as nn
from torch.nn import functional as F

# hyperparameters of the lecture's final gpt.py
vocab_size = 65  # tiny Shakespeare characters
block_size = 256
n_embd = 384
n_head = 6
n_layer = 6
dropout = 0.2


class Head(nn.Module):
    """one head of self-attention"""

    def __init__(self, n_embd, head_size, block_size, dropout):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        B, T, C = x.shape
        k = self.key(x)  # (B, T, hs)
        q = self.query(x)  # (B, T, hs)
        # attention scores, scaled by the head size
        wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5  # (B, T, T)
        wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
        wei = F.softmax(wei, dim=-1)
        wei = self.dropout(wei)
        v = self.value(x)
        return wei @ v  # (B, T, hs)


class MultiHeadAttention(nn.Module):
    """multiple heads of self-attention in parallel"""

    def __init__(self, n_embd, num_heads, head_size, block_size, dropout):
        super().__init__()
        self.heads = nn.ModuleList([Head(n_embd, head_size, block_size, dropout) for _ in range(num_heads)])
        self.proj = nn.Linear(head_size * num_heads, n_embd)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        out = torch.cat([h(x) for h in self.heads], dim=-1)
        return self.dropout(self.proj(out))


class FeedFoward(nn.Module):
    """a simple linear layer followed by a non-linearity"""

    def __init__(self, n_embd, dropout):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd),
            nn.ReLU(),
            nn.Linear(4 * n_embd, n_embd),
            nn.Dropout(dropout),
        )

    def forward(self, x):
        return self.net(x)


class Block(nn.Module):
    """Transformer block: communication followed by computation"""

    def __init__(self, n_embd, n_head, block_size, dropout):
        super().__init__()
        head_size = n_embd // n_head
        self.sa = MultiHeadAttention(n_embd, n_head, head_size, block_size, dropout)
        self.ffwd = FeedFoward(n_embd, dropout)
        self.ln1 = nn.LayerNorm(n_embd)
        self.ln2 = nn.LayerNorm(n_embd)

    def forward(self, x):
        x = x + self.sa(self.ln1(x))
        x = x + self.ffwd(self.ln2(x))
        return x


class GPTLanguageModel(nn.Module):
    def __init__(
        self,
        vocab_size=vocab_size,
        n_embd=n_embd,
        n_head=n_head,
        n_layer=n_layer,
        block_size=block_size,
        dropout=dropout,
        tie_weights=True,
    ):
        super().__init__()
        self.token_embedding_table = nn.Embedding(vocab_size, n_embd)
        self.position_embedding_table = nn.Embedding(block_size, n_embd)
        self.blocks = nn.Sequential(*[Block(n_embd, n_head, block_size, dropout) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)  # final layer norm
        self.lm_head = nn.Linear(n_embd, vocab_size)
        if tie_weights:
            # share the output projection with the input embedding (no re-initialisation)
            self.lm_head.weight = self.token_embedding_table.weight

    def forward(self, idx, targets=None):
        B, T = idx.shape
        tok_emb = self.token_embedding_table(idx)  # (B, T, C)
        pos_emb = self.position_embedding_table(torch.arange(T, device=idx.device))  # (T, C)
        x = tok_emb + pos_emb
        x = self.blocks(x)
        x = self.ln_f(x)
        logits = self.lm_head(x)  # (B, T, vocab_size)
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))


def small():
    """Same model and init (tied N(0, 1) head) at n_embd 64, 2 heads, 2 layers, context 64."""
    return GPTLanguageModel(n_embd=64, n_head=2, n_layer=2, block_size=64)


def init_loss(model, batch=16, seq=256, seed=0):
    """Cross-entropy at init on uniformly random tokens, and ln(vocab) for comparison (eval mode)."""
    import math

    gen = torch.Generator().manual_seed(seed)
    vocab = model.lm_head.out_features
    seq = min(seq, model.position_embedding_table.num_embeddings)
    idx = torch.randint(0, vocab, (batch, seq), generator=gen)
    targets = torch.randint(0, vocab, (batch, seq), generator=gen)
    model.eval()
    with torch.no_grad():
        _, loss = model(idx, targets)
    return loss.item(), math.log(vocab)


if __name__ == "__main__":
    torch.manual_seed(0)
    for tied in (True, False):
        m = GPTLanguageModel(tie_weights=tied)
        n = sum(p.numel() for p in m.parameters())
        print(f"tied={tied}: {n / 1e6:.2f}M parameters, CE at init {init_loss(m)[0]:.2f} vs ln(65) {init_loss(m)[1]:.2f}")
    print(f"small: CE at init {init_loss(small())[0]:.2f}")
