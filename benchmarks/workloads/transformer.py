"""A GPT-style decoder training step.

Vocabulary 256, width 128, 4 heads, 2 pre-LayerNorm blocks (causal self-attention; MLP
128 -> 512 -> GELU -> 128; residual connections) built from ``nn.TransformerEncoderLayer``
with ``norm_first=True``, learned positions, a final LayerNorm and a linear head; a batch of
16 sequences of 64 tokens, cross-entropy on the next token, one AdamW step. Weights come from
NumPy (the same numbers in every framework).
"""

from __future__ import annotations

import importlib

import numpy as np

from benchmarks.workloads.lstm import model_state

VOCAB, WIDTH, HEADS, BLOCKS, HIDDEN, SEQ, BATCH = 256, 128, 4, 2, 512, 64, 16
LR = 1e-3


def build(fw, seed: int):
    """``fw`` is ``chainrule`` or ``torch``; returns ``(step, initial_loss, None)``."""
    nn = fw.nn
    cross_entropy = importlib.import_module(f"{fw.__name__}.nn.functional").cross_entropy

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tokens = nn.Embedding(VOCAB, WIDTH)
            self.positions = nn.Embedding(SEQ, WIDTH)
            self.blocks = nn.ModuleList(
                nn.TransformerEncoderLayer(
                    WIDTH,
                    HEADS,
                    HIDDEN,
                    dropout=0.0,
                    activation="gelu",
                    batch_first=True,
                    norm_first=True,
                )
                for _ in range(BLOCKS)
            )
            self.norm = nn.LayerNorm(WIDTH)
            self.head = nn.Linear(WIDTH, VOCAB)

        def forward(self, idx, positions, mask):
            x = self.tokens(idx) + self.positions(positions)
            for block in self.blocks:
                x = block(x, src_mask=mask, is_causal=True)
            return self.head(self.norm(x))

    model = GPT()
    model.load_state_dict({k: fw.tensor(v) for k, v in model_state(model, seed).items()})
    tokens = np.random.default_rng(seed + 1).integers(0, VOCAB, (BATCH, SEQ + 1))
    x = fw.tensor(tokens[:, :-1])
    y = fw.tensor(tokens[:, 1:].reshape(-1))
    positions = fw.tensor(np.arange(SEQ))
    mask = fw.tensor(np.triu(np.full((SEQ, SEQ), -np.inf, dtype=np.float32), 1))
    opt = fw.optim.AdamW(model.parameters(), lr=LR)

    def loss_fn():
        return cross_entropy(model(x, positions, mask).reshape(-1, VOCAB), y)

    def step():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
        return loss.item()

    with fw.no_grad():
        initial = loss_fn().item()
    return step, initial, None


WORKLOADS = {"transformer": build}
