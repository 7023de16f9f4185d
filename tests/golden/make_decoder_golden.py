#!/usr/bin/python3
"""Golden values for the decoder, from the PyTorch module of the model contract
(tools/torch_captioner.py's Decoder).

Writes tests/data/golden/decoder_small.json: parameters (state dict), a padded batch,
logits, the masked mean cross-entropy, gradients after one backward pass, and parameters
after 3 Adam steps on the same batch. Dropout is off (p=0) because PyTorch's RNG is not
ours; the dropout op is tested on its own. Run with Debian's python3-torch:
    /usr/bin/python3 tests/golden/make_decoder_golden.py
"""
import json
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from torch_captioner import Decoder  # noqa: E402  (the merge decoder of the model contract)

D, E, H, V = 12, 6, 10, 17  # small dims keep the fixture readable; the code is dim-agnostic


def tolist(t):
    return t.detach().double().flatten().tolist()


def main():
    torch.manual_seed(7)
    model = Decoder(D, V, E, H, p=0.0)
    with torch.no_grad():  # spread the biases so that ReLU masks are mixed
        for p in model.parameters():
            p.mul_(1.5)
        model.embed.weight[0].zero_()
    feat = torch.rand(3, D)
    # <start>=1 ... <end>=2, padded with 0; one caption of length 1 word, one full length.
    tokens = torch.tensor([[1, 5, 9, 4, 2, 0], [1, 16, 2, 0, 0, 0], [1, 3, 7, 11, 13, 2]])
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    state0 = {k: tolist(v) for k, v in model.state_dict().items()}
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    loss_fn = nn.CrossEntropyLoss(ignore_index=0)
    logits = model(feat, inputs)
    loss = loss_fn(logits.reshape(-1, V), targets.reshape(-1))
    loss.backward()
    grads = {k: tolist(p.grad) for k, p in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)  # the gradients above are step 1's
    opt.step()
    for _ in range(2):
        opt.zero_grad()
        loss_fn(model(feat, inputs).reshape(-1, V), targets.reshape(-1)).backward()
        opt.step()
    state3 = {k: tolist(v) for k, v in model.state_dict().items()}
    out = {
        "dims": {"feature_dim": D, "embed_dim": E, "hidden_dim": H, "vocab_size": V},
        "shapes": shapes,
        "features": tolist(feat),
        "tokens": tokens.flatten().tolist(),
        "B": 3,
        "T": 5,
        "params": state0,
        "logits": tolist(logits),
        "loss": loss.item(),
        "grads": grads,
        "params_after_3_adam_steps": state3,
    }
    path = os.path.join(os.path.dirname(__file__), "..", "data", "golden", "decoder_small.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print("wrote", os.path.normpath(path), "loss", loss.item())


if __name__ == "__main__":
    main()
