#!/usr/bin/python3
"""Golden ResNet50 features from torchvision, for tests/test_resnet50.cpp.

Two cases, each on two synthetic images whose pixels come from a formula the C++ test repeats:
- random_v15: torchvision resnet50 (v1.5: stride on the 3x3), all 5 stages, torch
  preprocessing, 64x64 input; weights and BN statistics come from a hash formula (below) that
  the test also computes, so no 100 MB weight file is needed.
- msra_c4: the shared MSRA weights (../shared/data/weights/resnet50_msra_c4.safetensors),
  stages 1-4, stride_in_1x1, caffe preprocessing, 224x224 input.
Writes tests/data/golden/resnet50_features.json. Run: /usr/bin/python3 tests/golden/make_resnet_golden.py
"""
import json
import os
import sys

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from torch_captioner import read_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "..", "shared", "data", "weights", "resnet50_msra_c4.safetensors")


def fnv1a(name):
    h = 2166136261
    for b in name.encode():
        h = ((h ^ b) * 16777619) % 2**32
    return h


def uniform(name, n):
    """u in [0,1): ((i * 2654435761 + fnv1a(name)) mod 2^32) / 2^32, in exact integer arithmetic."""
    i = np.arange(n, dtype=np.uint64)
    return ((i * np.uint64(2654435761) + np.uint64(fnv1a(name))) % np.uint64(2**32)).astype(np.float64) / 2**32


def synthetic_value(name, shape):
    n = int(np.prod(shape))
    u = uniform(name, n)
    if name.endswith(".weight") and len(shape) == 4:
        fan_in = shape[1] * shape[2] * shape[3]
        v = (u - 0.5) * 2 * np.sqrt(6.0 / fan_in)
    elif name.endswith("running_var") or (name.endswith(".weight") and len(shape) == 1):
        v = 0.5 + u  # BN gamma and variance in [0.5, 1.5)
    else:
        v = (u - 0.5) * 0.2  # BN beta and mean in [-0.1, 0.1)
    return torch.tensor(v.astype(np.float32).reshape(shape))


def images(n, size):
    """uint8 [n, size, size, 3]: pixel = (x*(3+k) + y*(5+2c) + 37k + ((x*y) >> 3)) mod 256."""
    k, y, x, c = np.meshgrid(np.arange(n), np.arange(size), np.arange(size), np.arange(3), indexing="ij")
    return ((x * (3 + k) + y * (5 + 2 * c) + 37 * k + ((x * y) >> 3)) % 256).astype(np.uint8)


def trunk(model, x, stages):
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    for layer in [model.layer1, model.layer2, model.layer3, model.layer4][: stages - 1]:
        x = layer(x)
    return x.mean(dim=(2, 3))


def random_v15():
    model = torchvision.models.resnet50().eval()
    state = {k: synthetic_value(k, tuple(v.shape)) if v.dtype == torch.float32 else v
             for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    img = torch.tensor(images(2, 64)).double() / 255
    x = ((img - torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64)) /
         torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64)).float().permute(0, 3, 1, 2)
    with torch.no_grad():
        return trunk(model, x, 5)


def msra_c4():
    model = torchvision.models.resnet50().eval()
    weights = read_safetensors(SHARED)
    model.load_state_dict(weights, strict=False)
    for layer in [model.layer2, model.layer3]:  # stride_in_1x1: stride on the first 1x1 conv
        layer[0].conv1.stride, layer[0].conv2.stride = (2, 2), (1, 1)
    img = torch.tensor(images(2, 224)).double()
    x = (img[..., [2, 1, 0]] - torch.tensor([103.939, 116.779, 123.68], dtype=torch.float64)).float()
    with torch.no_grad():
        return trunk(model, x.permute(0, 3, 1, 2).contiguous(), 4)


def main():
    torch.set_num_threads(2)
    out = {"random_v15": {"image_size": 64, "features": random_v15().flatten().tolist()}}
    if os.path.exists(SHARED):
        out["msra_c4"] = {"image_size": 224, "features": msra_c4().flatten().tolist()}
    path = os.path.normpath(os.path.join(HERE, "..", "data", "golden", "resnet50_features.json"))
    with open(path, "w") as f:
        json.dump(out, f)
    print("wrote", path, {k: len(v["features"]) for k, v in out.items()})


if __name__ == "__main__":
    main()
