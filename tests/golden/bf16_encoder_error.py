#!/usr/bin/python3
"""How far the bfloat16 encoder's features may fall from FP32, for tests/test_resnet50.cpp's bounds.

Runs the two golden cases of make_resnet_golden.py in PyTorch (CPU, FP32 arithmetic) with the
engine's bfloat16 rounding: BatchNorm folded into the weights in FP32, then weights, network input
and every convolution's output (after bias, residual and ReLU) rounded to bfloat16; products
accumulate in FP32 and the pooled features stay FP32. Two ways, as the engine's two paths: "fused"
(cuDNN's fused call) adds the bias rounded to bfloat16; "unfused" (cuDNN's convolution, then our
epilogue) rounds the convolution to bfloat16 and adds the FP32 bias.
Prints max|diff|/max|ref| against the FP32 golden features. Run: /usr/bin/python3 tests/golden/bf16_encoder_error.py
"""
import json
import os

import torch
import torch.nn.functional as F
import torchvision

import make_resnet_golden as g

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "golden", "resnet50_features.json")


def bf16(x):
    return x.to(torch.bfloat16).float()


def fold(conv, bn):
    s = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    return (conv.weight.double() * s[:, None, None, None]).float(), (bn.bias.double() - bn.running_mean.double() * s).float()


def features(model, x, stages, fused):
    def conv(x, cv, bn, relu, res=None):
        w, b = fold(cv, bn)
        y = F.conv2d(x, bf16(w), None, cv.stride, cv.padding)
        y = y + bf16(b)[None, :, None, None] if fused else bf16(y) + b[None, :, None, None]
        if res is not None:
            y = y + res
        return bf16(F.relu(y) if relu else y)

    x = F.max_pool2d(conv(bf16(x), model.conv1, model.bn1, True), 3, 2, 1)
    for layer in [model.layer1, model.layer2, model.layer3, model.layer4][: stages - 1]:
        for blk in layer:
            t = conv(conv(x, blk.conv1, blk.bn1, True), blk.conv2, blk.bn2, True)
            idt = x if blk.downsample is None else conv(x, blk.downsample[0], blk.downsample[1], False)
            x = conv(t, blk.conv3, blk.bn3, True, idt)
    return x.mean(dim=(2, 3))


def main():
    torch.set_num_threads(2)
    golden = json.load(open(GOLDEN))
    cases = []
    model = torchvision.models.resnet50().eval()
    model.load_state_dict({k: g.synthetic_value(k, tuple(v.shape)) if v.dtype == torch.float32 else v
                           for k, v in model.state_dict().items()})
    img = torch.tensor(g.images(2, 64)).double() / 255
    x = ((img - torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64)) /
         torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64)).float().permute(0, 3, 1, 2)
    cases.append(("random_v15", model, x, 5))
    if "msra_c4" in golden and os.path.exists(g.SHARED):
        model = torchvision.models.resnet50().eval()
        model.load_state_dict(g.read_safetensors(g.SHARED), strict=False)
        for layer in [model.layer2, model.layer3]:
            layer[0].conv1.stride, layer[0].conv2.stride = (2, 2), (1, 1)
        img = torch.tensor(g.images(2, 224)).double()
        x = (img[..., [2, 1, 0]] - torch.tensor([103.939, 116.779, 123.68], dtype=torch.float64)).float()
        cases.append(("msra_c4", model, x.permute(0, 3, 1, 2).contiguous(), 4))
    with torch.no_grad():
        for name, model, x, stages in cases:
            ref = torch.tensor(golden[name]["features"]).reshape(x.shape[0], -1)
            for fused in (True, False):
                err = float((features(model, x, stages, fused) - ref).abs().max() / ref.abs().max())
                print(f"{name}: bfloat16, {'fused' if fused else 'unfused'}: max|diff|/max|ref| = {err:.2e}")


if __name__ == "__main__":
    main()
