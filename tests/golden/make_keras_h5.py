#!/usr/bin/python3
"""Writes a Keras ResNet50 weights file (HDF5, the layout of Keras 2's model.save_weights) with the
real layer names and shapes and values that say where they came from, for test_keras_import.cpp:

  kernel[h, w, i, o]  = its flat index in HWIO order (exact in float32)
  X[c]                = id * 4096 + c, id = 100*stage + 10*block + k (conv2_block3_1 -> 231; stem 0)
  bias = X, gamma = X + 0.25, beta = -X, moving_mean = 2X + 0.5, moving_variance = X + 0.75

so the importer's running_mean (moving_mean - bias) is X + 0.5. The files are tens of MB, so the
test writes them into a scratch folder rather than committing them.

Run: /usr/bin/python3 tests/golden/make_keras_h5.py --out FILE [--stages 1..5] [--extra LAYER]
       [--drop LAYER/ROLE] [--reshape LAYER/ROLE] [--model-save]
"""
import argparse
import sys

try:
    import h5py
    import numpy as np
except ImportError:
    sys.exit(3)  # the test skips on exit status 3 (a Python without h5py and numpy, as on the GPU machine)

BLOCKS, WIDTHS = (3, 4, 6, 3), (64, 128, 256, 512)


def conv_specs():
    """(stage, keras stem, id, kh, kw, cin, cout) for every conv+bn pair, in network order."""
    out = [(1, "conv1", 0, 7, 7, 3, 64)]
    cin = 64
    for s, (blocks, w) in enumerate(zip(BLOCKS, WIDTHS), start=2):
        for b in range(1, blocks + 1):
            stem = "conv%d_block%d_" % (s, b)
            ident = lambda k: 100 * s + 10 * b + k
            inp = cin if b == 1 else 4 * w
            if b == 1:
                out.append((s, stem + "0", ident(0), 1, 1, inp, 4 * w))
            out += [(s, stem + "1", ident(1), 1, 1, inp, w),
                    (s, stem + "2", ident(2), 3, 3, w, w),
                    (s, stem + "3", ident(3), 1, 1, w, 4 * w)]
        cin = 4 * w
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--stages", type=int, default=4, help="1 = stem only, 2..5 = up to conv2..conv5")
    ap.add_argument("--extra", action="append", default=[], help="also write this conv+bn pair (e.g. conv5_block1_1)")
    ap.add_argument("--drop", action="append", default=[],
                    help="leave out LAYER/ROLE, e.g. conv2_block2_3_bn/moving_variance")
    ap.add_argument("--reshape", action="append", default=[], help="write LAYER/ROLE with one extra output channel")
    ap.add_argument("--model-save", action="store_true",
                    help="model.save() layout (under model_weights) with variable-length name strings")
    args = ap.parse_args()

    specs = [c for c in conv_specs() if c[0] <= args.stages or c[1] in args.extra]
    with h5py.File(args.out, "w") as f:
        root = f.create_group("model_weights") if args.model_save else f
        names = lambda xs: (np.array(xs, dtype=h5py.string_dtype()) if args.model_save
                            else np.array([x.encode() for x in xs]))
        layer_names = ["input_1", "conv1_pad"]
        for _, stem, ident, kh, kw, cin, cout in specs:
            x = ident * 4096 + np.arange(cout, dtype=np.float64)
            weights = {
                stem + "_conv": {"kernel": np.arange(kh * kw * cin * cout, dtype=np.float64).reshape(kh, kw, cin, cout),
                                 "bias": x},
                stem + "_bn": {"gamma": x + 0.25, "beta": -x, "moving_mean": 2 * x + 0.5, "moving_variance": x + 0.75},
            }
            for layer, ws in weights.items():
                layer_names.append(layer)
                g = root.create_group(layer)
                kept = []
                for role, value in ws.items():
                    if layer + "/" + role in args.drop:
                        continue
                    if layer + "/" + role in args.reshape:
                        value = np.concatenate([value, value[..., :1]], axis=-1)
                    name = layer + "/" + role + ":0"
                    g.create_dataset(name, data=value.astype(np.float32))
                    kept.append(name)
                g.attrs["weight_names"] = names(kept)
            layer_names.append(stem + "_relu")  # weightless layers are listed too, with no weights
            root.create_group(stem + "_relu").attrs["weight_names"] = names([])
        root.attrs["layer_names"] = names(layer_names)
        root.attrs["backend"] = b"tensorflow"
        root.attrs["keras_version"] = b"2.4.0"


if __name__ == "__main__":
    main()
