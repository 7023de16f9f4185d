#!/usr/bin/env python3
"""PyTorch peer of bench/bench_encoder_ops.cpp: the encoder's ops the PyTorch way, at the same
shapes and under the same names, timed as bench/peer/kernels.py times ops (wall clock per call
on the CPU, CUDA events around each call on the GPU).

- preprocess/<norm>/B:32: uint8 RGB [32,224,224,3] (NHWC, as decoded) to float32 NHWC, the
  engine's layout. caffe: flip to BGR, subtract the BGR means; torch: subtract 255*mean, multiply
  by 1/(255*std), the arithmetic of tools/torch_captioner.py.
- conv/<class>/B:<B>: F.conv2d with its bias, then the epilogue the engine fuses (ReLU; the
  residual added before it for the expand; none for the downsample), FP32 (TF32 off) on
  channels_last tensors: the engine's NHWC, and PyTorch's faster CPU layout. On CUDA NCHW is
  timed too and the faster layout reported, named in the note. cuDNN picks its algorithms by
  heuristics (cudnn.benchmark off), as the engine does. B: 32 on CUDA, 16 on the CPU.

  /usr/bin/python3 bench/peer/encoder_ops.py --device cpu --threads 2 --json
"""
import argparse

import torch
import torch.nn.functional as F

from kernels import Timer, emit, rand, torch_device

IMAGE = 224
WIDTH = [64, 128, 256, 512]


def conv_classes():
    """[(name, H, C, K, R, stride, pad, residual, relu)]: the list of bench_encoder_ops.cpp."""
    out = [("conv1", IMAGE, 3, 64, 7, 2, 3, False, True)]
    c_in, hw = 64, IMAGE // 4
    for layer, w in enumerate(WIDTH):
        s = 2 if layer else 1
        o, p = hw // s, f"layer{layer + 1}."
        out.append((p + "reduce0", hw, c_in, w, 1, 1, 0, False, True))
        if s == 2:
            out.append((p + "reduce0.s2", hw, c_in, w, 1, 2, 0, False, True))
            out.append((p + "3x3.s2", hw, w, w, 3, 2, 1, False, True))
        out += [(p + "reduce", o, 4 * w, w, 1, 1, 0, False, True), (p + "3x3", o, w, w, 3, 1, 1, False, True),
                (p + "expand", o, w, 4 * w, 1, 1, 0, True, True),
                (p + "downsample" + (".s2" if s == 2 else ""), hw, c_in, 4 * w, 1, s, 0, False, False)]
        c_in, hw = 4 * w, o
    return out


def preprocess(dev, timer):
    B = 32
    images = torch.randint(0, 256, (B, IMAGE, IMAGE, 3), dtype=torch.uint8, device=dev)
    mean_bgr = torch.tensor([103.939, 116.779, 123.68], device=dev)
    mean = torch.tensor([0.485, 0.456, 0.406], device=dev) * 255
    inv_std = 1 / (torch.tensor([0.229, 0.224, 0.225], device=dev) * 255)
    return {
        f"preprocess/caffe/B:{B}": timer(lambda: images.flip(-1).float().sub_(mean_bgr)),
        f"preprocess/torch/B:{B}": timer(lambda: images.float().sub_(mean).mul_(inv_std)),
    }


def convs(dev, timer):
    B = 32 if dev.type == "cuda" else 16
    layouts = [("NHWC", torch.channels_last)] + ([("NCHW", torch.contiguous_format)] if dev.type == "cuda" else [])
    res = {}
    for name, H, C, K, R, stride, pad, residual, relu in conv_classes():
        P = (H + 2 * pad - R) // stride + 1
        best = None
        for label, fmt in layouts:
            x = rand(B, C, H, H, device=dev, lo=0, hi=1).contiguous(memory_format=fmt)
            w = rand(K, C, R, R, device=dev, lo=-0.05, hi=0.05).contiguous(memory_format=fmt)
            b = rand(K, device=dev)
            r = rand(B, K, P, P, device=dev).contiguous(memory_format=fmt) if residual else None

            def fn():
                y = F.conv2d(x, w, b, stride, pad)
                if r is not None:
                    y += r
                return y.relu_() if relu else y

            s = timer(fn)
            if s is not None and (best is None or s < best[0]):
                best = (s, label)
            del x, w, b, r
        if best:
            res[f"conv/{name}/B:{B}"] = {"seconds": best[0], "note": best[1]}
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    ap.add_argument("--min-time", type=float, default=0.2, help="seconds measured per op, at least")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    dev = torch_device(args.device, args.threads)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = False
    torch.manual_seed(0)
    timer = Timer(dev, args.min_time)
    results = {}
    with torch.no_grad():
        results.update({k: {"seconds": v} for k, v in preprocess(dev, timer).items() if v is not None})
        results.update(convs(dev, timer))
    doc = {"torch": torch.__version__, "device": args.device, "threads": torch.get_num_threads(),
           "results": [{"name": k, **v} for k, v in results.items()]}
    emit(doc, args.json, lambda r: f"{r['name']:40s} {r['seconds'] * 1e6:12.1f} us {r.get('note', '')}")


if __name__ == "__main__":
    main()
