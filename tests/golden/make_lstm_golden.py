"""Writes tests/data/golden/lstm_small.json: a small PyTorch nn.LSTM case (forward outputs and
the gradients of loss = sum(h * R)) that tests/test_lstm.cpp checks the C++ LSTM against.

Run from the repository root with the system Python that has torch: /usr/bin/python3 tests/golden/make_lstm_golden.py
"""
import json
import os

import torch

B, T, I, H = 2, 3, 4, 5

torch.manual_seed(1234)
lstm = torch.nn.LSTM(I, H, batch_first=True)
x = torch.randn(B, T, I)
R = torch.randn(B, T, H)

# Inputs are float32 values (what the C++ side reads); the reference is computed in double so
# that the golden numbers carry no float32 rounding of their own.
lstm = lstm.double()
xd = x.double().requires_grad_()
h, (_, c_n) = lstm(xd)
(h * R.double()).sum().backward()


def flat(t):
    return [float(v) for v in t.detach().reshape(-1)]


case = {
    "B": B, "T": T, "I": I, "H": H,
    "x": flat(x), "R": flat(R),
    "w_ih": flat(lstm.weight_ih_l0), "w_hh": flat(lstm.weight_hh_l0),
    "b_ih": flat(lstm.bias_ih_l0), "b_hh": flat(lstm.bias_hh_l0),
    "h": flat(h), "c_T": flat(c_n[0]),
    "dx": flat(xd.grad),
    "dw_ih": flat(lstm.weight_ih_l0.grad), "dw_hh": flat(lstm.weight_hh_l0.grad),
    "db_ih": flat(lstm.bias_ih_l0.grad), "db_hh": flat(lstm.bias_hh_l0.grad),
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "golden", "lstm_small.json")
with open(out, "w") as f:  # one key per line
    f.write("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in case.items()) + "\n}\n")
print("wrote", os.path.normpath(out))
