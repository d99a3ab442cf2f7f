"""Train a small MLP on the built-in digits dataset with a PyTorch-style loop.

Change ``import chainrule as cr`` to ``import torch as cr`` (and the dataset lines) and the
loop is PyTorch's.

Run: ``python examples/train_digits.py [--epochs N]``
"""

import argparse

import chainrule as cr
from chainrule import datasets, nn


def main(epochs: int = 10) -> float:
    cr.manual_seed(0)
    data = datasets.load("digits")
    train_loader, test_loader = data.loaders(batch_size=32)

    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(data.in_features, 128),
        nn.ReLU(),
        nn.Linear(128, data.num_classes),
    )
    loss_fn = nn.CrossEntropyLoss()
    optimizer = cr.optim.Adam(model.parameters(), lr=1e-3)

    for epoch in range(epochs):
        model.train()
        total = 0.0
        for x, y in train_loader:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)

        model.eval()
        correct = 0
        with cr.no_grad():
            for x, y in test_loader:
                correct += (model(x).argmax(dim=1) == y).sum().item()
        accuracy = correct / len(data.test)
        print(f"epoch {epoch + 1}: loss {total / len(data.train):.4f}  test acc {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    main(parser.parse_args().epochs)
