"""Writes tests/data/golden/conv_small.json: y = relu(conv2d(x, w, b, stride 2, pad 1) + residual).

Everything is stored flattened in PyTorch's layouts (x, residual, y NCHW; w OIHW); the test
transposes to the engine's NHWC / KRSC. Odd sizes (C=3, K=4, 7x9 input) so that a transposition
mistake cannot pass. Run with the interpreter that has torch:  /usr/bin/python3 tests/golden/make_conv_golden.py
"""
import json
import os

import torch


def main():
    torch.manual_seed(0)
    N, C, H, W, K, R, stride, pad = 2, 3, 7, 9, 4, 3, 2, 1
    x = torch.randn(N, C, H, W, dtype=torch.float64)
    w = torch.randn(K, C, R, R, dtype=torch.float64)
    b = torch.randn(K, dtype=torch.float64)
    conv = torch.nn.functional.conv2d(x, w, b, stride=stride, padding=pad)
    residual = torch.randn(conv.shape, dtype=torch.float64)
    # Inputs are rounded to float32 first; the output is computed in float64 from those values.
    x, w, b, residual = (t.float().double() for t in (x, w, b, residual))
    y = torch.relu(torch.nn.functional.conv2d(x, w, b, stride=stride, padding=pad) + residual)
    golden = {
        "torch_version": torch.__version__,
        "N": N, "C": C, "H": H, "W": W, "K": K, "R": R, "S": R, "stride": stride, "pad": pad,
        "P": y.shape[2], "Q": y.shape[3],
        "x": x.reshape(-1).tolist(), "w": w.reshape(-1).tolist(), "bias": b.tolist(),
        "residual": residual.reshape(-1).tolist(), "y": y.reshape(-1).tolist(),
    }
    out = os.path.join(os.path.dirname(__file__), "..", "data", "golden", "conv_small.json")
    with open(out, "w") as f:
        json.dump(golden, f)
        f.write("\n")


if __name__ == "__main__":
    main()
