#!/usr/bin/env python3
"""PyTorch peer of bench/bench_train_step.cpp: the same merge decoder (tools/torch_captioner.py),
one teacher-forced training step (forward, CrossEntropyLoss(ignore_index=0), backward, Adam) on
the very same token batches, timed after warm-up. Prints one JSON record per (batch size, length
mode).

  python3 bench/peer/train_step.py --device cpu --batch 64 256 --T 13 --json

The batches come from the SplitMix64 generator of bench_train_step.cpp, replayed bit for bit:
--T N gives every caption N+1 tokens; --T flickr gives Flickr8k-like lengths padded to the
longest caption of each batch. Both are run when --T is given twice (the default).
"""
import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from kernels import torch_device  # noqa: E402
from torch_captioner import Decoder  # noqa: E402  (the merge decoder of the model contract)

MASK = (1 << 64) - 1
TOKEN_SEED = 2024
DISTINCT_BATCHES = 8


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self):
        return (self.next() >> 11) * 2.0**-53


def make_batches(B, fixed_T, V):
    """Token batches [B, T+1] exactly as make_batches() in bench_train_step.cpp."""
    rng = SplitMix64(TOKEN_SEED)
    batches = []
    for _ in range(DISTINCT_BATCHES):
        caps = []
        for _ in range(B):
            words = fixed_T - 1
            if fixed_T <= 0:
                u1, u2, u3, u4 = rng.uniform(), rng.uniform(), rng.uniform(), rng.uniform()
                z = (u1 + u2 + u3 + u4 - 2.0) * math.sqrt(3.0)
                words = min(max(int(math.floor(11.0 + 3.8 * z + 0.5)), 1), 38)
            cap = [1]
            for _ in range(words):
                u = rng.uniform()
                cap.append(4 + int(math.floor((V - 4) * (u * u))))
            cap.append(2)
            caps.append(cap)
        longest = max(len(c) for c in caps)
        batches.append(torch.tensor([c + [0] * (longest - len(c)) for c in caps], dtype=torch.long))
    return batches


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(device, B, fixed_T, V, D, warmup, min_time, min_steps):
    torch.manual_seed(0)
    model = Decoder(D, V).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss(ignore_index=0)
    batches = [t.to(device) for t in make_batches(B, fixed_T, V)]
    feats = [torch.rand(B, D, device=device) for _ in batches]
    counts = [int((t[:, 1:] != 0).sum()) for t in batches]

    def step(i):
        tokens, feat = batches[i % len(batches)], feats[i % len(feats)]
        logits = model(feat, tokens[:, :-1])
        loss = loss_fn(logits.reshape(-1, V), tokens[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()  # the engine's train_step also brings the loss to the host

    # Warm-up covers every batch shape (cuDNN plans, allocator caches).
    for i in range(max(warmup, len(batches))):
        step(i)
    sync(device)
    steps, tokens = 0, 0
    t0 = time.perf_counter()
    while steps < min_steps or time.perf_counter() - t0 < min_time:
        step(steps)
        tokens += counts[steps % len(counts)]
        steps += 1
    sync(device)
    seconds = time.perf_counter() - t0
    return {
        "work": "train_step",
        "B": B,
        "T": str(fixed_T) if fixed_T > 0 else "flickr",
        "steps": steps,
        "ms_per_step": 1e3 * seconds / steps,
        "tokens_per_step": tokens / steps,
        "tokens_per_s": tokens / seconds,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--T", nargs="+", default=["13", "flickr"], help="target length per caption, or 'flickr'")
    ap.add_argument("--vocab", type=int, default=1660)
    ap.add_argument("--feature-dim", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=2.0, help="seconds timed per configuration, at least")
    ap.add_argument("--min-steps", type=int, default=10)
    ap.add_argument("--tf32", action="store_true", help="let cuDNN use TF32 (the engine is plain FP32)")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    args = ap.parse_args()

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("train_step.py: --device cuda but torch sees no CUDA device")
    # Same arithmetic as the engine: FP32, no TF32 (PyTorch lets cuDNN use TF32 by default).
    device = torch_device(args.device, args.threads, args.tf32)
    results = []
    for B in args.batch:
        for T in args.T:
            fixed_T = 0 if T == "flickr" else int(T)
            results.append(bench(device, B, fixed_T, args.vocab, args.feature_dim, args.warmup, args.min_time,
                                 args.min_steps))
    info = {
        "torch": torch.__version__,
        "device": args.device,
        "device_name": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor(),
        "threads": torch.get_num_threads(),
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
        "tf32": args.tf32,
        "results": results,
    }
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        for r in results:
            print(f"train_step B={r['B']} T={r['T']}: {r['ms_per_step']:.2f} ms/step, "
                  f"{r['tokens_per_s']:.0f} tokens/s (torch {info['torch']}, {info['threads']} threads)")


if __name__ == "__main__":
    main()
