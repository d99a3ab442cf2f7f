"""An LSTM language-model training step: embedding -> LSTM -> linear at every position.

Vocabulary 64, embedding 64, one LSTM layer of 256 units (``batch_first``), a batch of 32
sequences of 64 tokens, cross-entropy on the next token at every position, one Adam step.
The model is built from ``nn`` layers of the framework under test and loaded with the same
NumPy-drawn weights, so both start from one loss. chainrule runs each LSTM layer as one fused
node (see ``chainrule/ops/sequence_kernels.py``).
"""

from __future__ import annotations

import importlib

import numpy as np

VOCAB, EMBED, HIDDEN, SEQ, BATCH = 64, 64, 256, 64, 32
LR = 1e-3


def model_state(model, seed: int) -> dict:
    """Weights for every entry of ``model.state_dict()``, drawn from ``seed`` by name.

    Matrices get ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, vectors ``U(-0.05, 0.05)`` (LayerNorm
    weights 1 plus that); the keys are sorted, so both frameworks draw the same numbers.
    """
    rng = np.random.default_rng(seed)
    state = {}
    for name in sorted(model.state_dict()):
        shape = tuple(model.state_dict()[name].shape)
        bound = 1.0 / np.sqrt(shape[-1]) if len(shape) > 1 else 0.05
        value = rng.uniform(-bound, bound, shape)
        if name.endswith("weight") and len(shape) == 1:  # a normalisation layer's scale
            value += 1.0
        state[name] = value.astype(np.float32)
    return state


def build(fw, seed: int):
    """``fw`` is ``chainrule`` or ``torch``; returns ``(step, initial_loss, None)``."""
    nn = fw.nn
    cross_entropy = importlib.import_module(f"{fw.__name__}.nn.functional").cross_entropy

    class CharLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(VOCAB, EMBED)
            self.lstm = nn.LSTM(EMBED, HIDDEN, batch_first=True)
            self.head = nn.Linear(HIDDEN, VOCAB)

        def forward(self, tokens):
            out, _ = self.lstm(self.embed(tokens))
            return self.head(out)

    model = CharLSTM()
    model.load_state_dict({k: fw.tensor(v) for k, v in model_state(model, seed).items()})
    tokens = np.random.default_rng(seed + 1).integers(0, VOCAB, (BATCH, SEQ + 1))
    x = fw.tensor(tokens[:, :-1])
    y = fw.tensor(tokens[:, 1:].reshape(-1))
    opt = fw.optim.Adam(model.parameters(), lr=LR)

    def loss_fn():
        return cross_entropy(model(x).reshape(-1, VOCAB), y)

    def step():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
        return loss.item()

    with fw.no_grad():
        initial = loss_fn().item()
    # the op count would compare a fused layer with PyTorch's, so no per-op figure
    return step, initial, None


WORKLOADS = {"lstm": build}
