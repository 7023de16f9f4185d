"""Writes tests/data/golden/adam_small.json: parameters after three torch.optim.Adam steps.

Two parameter tensors (shapes 3x5 and 7) are flattened in order into one buffer, matching the
engine's flat parameter layout. Each case runs three steps with fixed per-step gradients. The
hyperparameters are float32 values (0.999 is 0.99900001287...), because the engine's AdamConfig
holds floats: torch then computes 1 - beta2 and the bias corrections from the same numbers the
engine does, and the moments can be compared tightly. Run with the interpreter that has torch:  /usr/bin/python3 tests/golden/make_adam_golden.py
"""
import json
import os

import torch


def flat(tensors):
    return torch.cat([t.detach().reshape(-1) for t in tensors]).tolist()


def f32(x):
    """The double nearest float32(x): what a float field of AdamConfig holds."""
    return float(torch.tensor(x, dtype=torch.float32))


def run_case(weight_decay, seed):
    torch.manual_seed(seed)
    shapes = [(3, 5), (7,)]
    params = [torch.nn.Parameter(torch.randn(s, dtype=torch.float32)) for s in shapes]
    params0 = flat(params)
    # Gradients of different scales per step so that the moments and bias corrections matter.
    grads = [[torch.randn(s, dtype=torch.float32) * scale for s in shapes] for scale in (1.0, 0.1, 3.0)]
    lr, betas, eps, weight_decay = f32(1e-3), (f32(0.9), f32(0.999)), f32(1e-8), f32(weight_decay)
    opt = torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=False)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.clone()
        opt.step()
    states = [opt.state[p] for p in params]
    return {
        "lr": lr, "beta1": betas[0], "beta2": betas[1], "eps": eps, "weight_decay": weight_decay,
        "params0": params0,
        "grads": [flat(g) for g in grads],
        "params": flat(params),
        "exp_avg": flat([s["exp_avg"] for s in states]),
        "exp_avg_sq": flat([s["exp_avg_sq"] for s in states]),
    }


def main():
    out = os.path.join(os.path.dirname(__file__), "..", "data", "golden", "adam_small.json")
    cases = [run_case(0.0, 1), run_case(0.01, 2)]
    with open(out, "w") as f:
        json.dump({"torch_version": torch.__version__, "cases": cases}, f)
        f.write("\n")


if __name__ == "__main__":
    main()
