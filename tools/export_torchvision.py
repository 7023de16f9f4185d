#!/usr/bin/python3
"""Exports a torchvision ResNet50 as a caption encoder: DIR/encoder.safetensors (F32, torchvision
names; fc.* and num_batches_tracked dropped, layer4.* too for --stages 4) and DIR/config.json
(an existing one keeps its other keys, e.g. a trained decoder's).

  /usr/bin/python3 tools/export_torchvision.py --weights resnet50_state_dict.pth --out DIR [--stages 4|5]
  /usr/bin/python3 tools/export_torchvision.py --random --seed N --out DIR [--stages 4|5]
  # the bundled default model's encoder (MSRA weights, Caffe conventions, conv weights in F16):
  /usr/bin/python3 tools/export_torchvision.py --weights resnet50_msra_c4.safetensors --stages 4 \
      --stride-in-1x1 --preprocess caffe --resize squash --f16 --out models/flickr8k-resnet50c4

--weights takes a state_dict saved with torch.save (e.g. torchvision's ResNet50_Weights.IMAGENET1K_V2
download). --random builds an untrained resnet50 with random batch-norm parameters and running
statistics (an untrained one has mean 0, var 1, gamma 1, beta 0, which would hide mistakes in how
they are applied), for tests. The safetensors file is written by hand (struct + json + numpy), so
the `safetensors` package is not needed.
"""
import argparse
import json
import os
import struct

import numpy as np
import torch
import torchvision

from torch_captioner import read_safetensors  # this script's own folder


def write_safetensors(path, tensors, metadata, half=()):
    """F32, except the tensors named in `half`, stored as F16."""
    header = {"__metadata__": metadata}
    pos, blobs = 0, []
    for name, array in tensors:
        dtype, tag = ("<f2", "F16") if name in half else ("<f4", "F32")
        raw = np.ascontiguousarray(array, dtype=dtype).tobytes()
        header[name] = {"dtype": tag, "shape": list(array.shape), "data_offsets": [pos, pos + len(raw)]}
        blobs.append(raw)
        pos += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # align the data to 8 bytes
    write_atomic(path, struct.pack("<Q", len(text)) + text + b"".join(blobs))


def write_atomic(path, data):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def randomize_batchnorm(model, seed):
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", help="a torchvision resnet50 state_dict (.pth, or .safetensors)")
    src.add_argument("--random", action="store_true", help="random weights (for tests)")
    ap.add_argument("--seed", type=int, default=0, help="seed for --random")
    ap.add_argument("--out", required=True, help="model directory")
    ap.add_argument("--stages", type=int, choices=(4, 5), default=5,
                    help="5: the full network (2048-d features); 4: up to layer3 (1024-d)")
    ap.add_argument("--stride-in-1x1", action="store_true",
                    help="Caffe/Keras 'v1' weights (e.g. the MSRA ResNet-50): stride on the first 1x1 conv")
    ap.add_argument("--preprocess", choices=("torch", "caffe"), default="torch")
    ap.add_argument("--resize", choices=("center-crop", "squash"), default="center-crop")
    ap.add_argument("--f16", action="store_true", help="store conv weights as F16 (half the size)")
    args = ap.parse_args()

    if args.random:
        torch.manual_seed(args.seed)
        model = torchvision.models.resnet50(weights=None)
        randomize_batchnorm(model, args.seed)
        source = "torchvision resnet50, random (seed %d)" % args.seed
    else:
        model = torchvision.models.resnet50(weights=None)
        if args.weights.endswith(".safetensors"):
            state = read_safetensors(args.weights)
        else:
            state = torch.load(args.weights, map_location="cpu", weights_only=True)
        missing, unexpected = model.load_state_dict(state, strict=False)
        # Only what the exported trunk does not use may be absent.
        missing = [k for k in missing if not (k.startswith("fc.") or k.endswith("num_batches_tracked")
                                              or (args.stages == 4 and k.startswith("layer4.")))]
        if missing or unexpected:
            raise SystemExit("%s: not a resnet50 state_dict (missing %s, unexpected %s)"
                             % (args.weights, missing[:3], unexpected[:3]))
        source = os.path.basename(args.weights)

    keep = lambda name: not (name.startswith("fc.") or name.endswith("num_batches_tracked")
                             or (args.stages == 4 and name.startswith("layer4.")))
    tensors = [(n, t.detach().cpu().float().numpy()) for n, t in model.state_dict().items() if keep(n)]

    os.makedirs(args.out, exist_ok=True)
    half = {n for n, t in tensors if args.f16 and t.ndim == 4}
    write_safetensors(os.path.join(args.out, "encoder.safetensors"), tensors, {"format": "pt", "source": source},
                      half)
    config_path = os.path.join(args.out, "config.json")
    config = {}
    if os.path.exists(config_path):  # a trained decoder's config keeps its other keys
        with open(config_path) as f:
            config = json.load(f)
    config["format"] = "caption-model/1"
    config["encoder"] = {"arch": "resnet50", "stages": args.stages, "stride_in_1x1": args.stride_in_1x1,
                         "bn_eps": 1e-5, "preprocess": args.preprocess, "resize": args.resize, "image_size": 224,
                         "weights": "encoder.safetensors"}
    write_atomic(config_path, (json.dumps(config, indent=2) + "\n").encode())
    print(json.dumps({"tensors": len(tensors), "stages": args.stages, "out": args.out}))


if __name__ == "__main__":
    main()
