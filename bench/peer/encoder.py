#!/usr/bin/python3
"""PyTorch peer of bench/bench_encoder.cpp: torchvision ResNet50 from uint8 images to globally
average-pooled features (stages 4: up to layer3, as the default model; 5: the full trunk), at
batch 1, 32 and 256. CPU: FP32 channels_last. CUDA: FP32, TF32 and bf16, channels_last.
Prints JSON {"torch", "threads", "results": [{"name", "images_per_s", "seconds"}]} with --json.
"""
import argparse
import json
import time

import torch
import torchvision


def trunk(model, stages):
    layers = [model.conv1, model.bn1, model.relu, model.maxpool] + [model.layer1, model.layer2, model.layer3,
                                                                    model.layer4][: stages - 1]
    return torch.nn.Sequential(*layers)


def bench(fn, min_time):
    fn()  # warm-up
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        el = time.perf_counter() - start
        if el >= min_time:
            return el / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--batches", default="1,32,256")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    mean = torch.tensor([0.485, 0.456, 0.406], device=dev).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225], device=dev).view(1, 3, 1, 1) * 255
    modes = [("fp32", torch.float32, False)]
    if args.device == "cuda":
        modes += [("tf32", torch.float32, True), ("bf16", torch.bfloat16, False)]
    results = []
    for stages in (4, 5):
        base = trunk(torchvision.models.resnet50().eval(), stages).to(dev).to(memory_format=torch.channels_last)
        for B in [int(b) for b in args.batches.split(",")]:
            images = torch.randint(0, 256, (B, 224, 224, 3), dtype=torch.uint8)
            for mode, dtype, tf32 in modes:
                torch.backends.cuda.matmul.allow_tf32 = tf32
                torch.backends.cudnn.allow_tf32 = tf32
                model = base.to(dtype)

                def step():
                    with torch.no_grad():
                        x = images.to(dev, non_blocking=True).permute(0, 3, 1, 2).float()
                        x = ((x - mean) / std).to(dtype).contiguous(memory_format=torch.channels_last)
                        f = model(x).float().mean(dim=(2, 3)).cpu()
                    return f

                s = bench(step, args.min_time)
                results.append({"name": f"encoder/stages:{stages}/B:{B}/{mode}", "seconds": s, "images_per_s": B / s})
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "results": results}
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
