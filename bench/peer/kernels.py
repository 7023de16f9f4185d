#!/usr/bin/env python3
"""PyTorch peer of bench/bench_kernels.cpp: each op of the decoder done the way PyTorch does
it (the ATen op, or the autograd backward that a training step runs), at the same shapes and
under the same names ("<op>/B:<B>/T:<T>", "<op>/B:<B>", "adam/P:<n>"), timed the same way:
wall clock per call on the CPU, CUDA events around each call on the GPU.

  python3 bench/peer/kernels.py --device cpu --threads 2 --json
"""
import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

E, H, V, D = 50, 256, 1660, 1024
P_DROP = 0.3
SHAPES = [(64, 13), (256, 13), (64, 39), (256, 39)]
BATCHES = [64, 256]
BANDWIDTH_SHAPE = (8192, 39)  # bench_kernels.cpp's kBandwidthShape: the memory-bound ops, on CUDA only


def engine_param_count():
    """Length of the engine's flat parameter buffer (model/decoder.cpp: tensors padded to 64 floats)."""
    numels = [H * D, H, V * E, 4 * H * E, 4 * H * H, 4 * H, 4 * H, H * H, H, V * H, V]
    offset = 0
    for n in numels[:-1]:
        offset += (n + 63) // 64 * 64
    return offset + numels[-1]


def torch_device(name, threads, tf32=False):
    """The torch device for --device, with --threads applied (0: left as is) and TF32 as asked (the
    engine is plain FP32)."""
    if threads > 0:
        torch.set_num_threads(threads)
    dev = torch.device(name)
    if dev.type == "cuda":
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
    return dev


def emit(doc, as_json, line):
    """Prints a peer's result document: as JSON for compare.py, or one line(result) per result."""
    if as_json:
        print(json.dumps(doc, indent=1))
    else:
        for r in doc["results"]:
            print(line(r))


class Timer:
    """Seconds per call. On the GPU by CUDA events around each call, or with wall=True by the wall
    clock with the host waiting for the device after each call (decoding, whose every step goes
    back to the host before the next)."""

    def __init__(self, device, min_time, wall=False):
        self.device, self.min_time, self.wall = device, min_time, wall

    def __call__(self, fn, prepare=None):
        """Seconds per call of fn (None if it fails: one op's failure must not lose the rest)."""
        try:
            return self._time(fn, prepare)
        except Exception as e:  # noqa: BLE001
            print(f"kernels.py: {fn}: {type(e).__name__}: {e}", file=sys.stderr)
            return None

    def _time(self, fn, prepare):
        cuda = self.device.type == "cuda"
        events = cuda and not self.wall
        for _ in range(3):
            if prepare:
                prepare()
            fn()
        if cuda:
            torch.cuda.synchronize()
        if events:
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        total, n, wall0 = 0.0, 0, time.perf_counter()
        # Stop at min_time of measured time, or at 3x that of wall time for tiny ops whose
        # Python overhead dwarfs them (at least 3 calls).
        while n < 3 or (total < self.min_time and time.perf_counter() - wall0 < 3 * self.min_time):
            if prepare:
                prepare()
            if events:
                start.record()
                fn()
                stop.record()
                stop.synchronize()
                total += start.elapsed_time(stop) * 1e-3
            else:
                t0 = time.perf_counter()
                fn()
                if cuda:
                    torch.cuda.synchronize()
                total += time.perf_counter() - t0
            n += 1
        return total / n


def rand(*shape, device, lo=-1.0, hi=1.0, grad=False):
    t = torch.empty(*shape, device=device).uniform_(lo, hi)
    return t.requires_grad_(grad)


def ids(n, device, pad=0.0):
    r = torch.rand(n, device=device)
    t = 1 + torch.clamp((V - 1) * torch.rand(n, device=device) ** 2, max=V - 2).long()
    return torch.where(r < pad, torch.zeros_like(t), t)


def backward_fn(out, grad, params):
    """Runs autograd backward again on each call (the graph is kept), with fresh .grad fields."""
    def fn():
        for p in params:
            p.grad = None
        out.backward(grad, retain_graph=True)
    return fn


def token_ops(dev, timer, B, T, bandwidth_only=False):
    """The token-level ops at B x T; bandwidth_only: those of the bandwidth goal (embedding backward,
    dropout, softmax + cross-entropy)."""
    N = B * T
    res = {}
    table, dout_e = rand(V, E, device=dev), rand(N, E, device=dev)
    tok, tok_pad = ids(N, dev), ids(N, dev, 0.1)
    if not bandwidth_only:
        res["embedding_fwd"] = timer(lambda: F.embedding(tok, table))
    res["embedding_bwd"] = timer(lambda: torch.ops.aten.embedding_dense_backward(dout_e, tok_pad, V, 0, False))

    x = rand(N, E, device=dev)
    _, mask = torch.native_dropout(x, P_DROP, True)
    res["dropout_fwd"] = timer(lambda: torch.native_dropout(x, P_DROP, True))
    res["dropout_bwd"] = timer(lambda: torch.ops.aten.native_dropout_backward(x, mask, 1.0 / (1.0 - P_DROP)))

    logits = rand(N, V, device=dev, lo=-4, hi=4, grad=True)
    tgt = ids(N, dev, 0.1)
    res["softmax_xent_fwd"] = timer(lambda: F.cross_entropy(logits, tgt, ignore_index=0, reduction="none"))
    loss = F.cross_entropy(logits, tgt, ignore_index=0, reduction="none")
    res["softmax_xent_bwd"] = timer(backward_fn(loss, torch.full_like(loss, 1.0 / N), [logits]))
    del logits, loss  # the bandwidth shape's are gigabytes
    if bandwidth_only:
        return {f"{op}/B:{B}/T:{T}": s for op, s in res.items()}

    lstm = nn.LSTM(E, H, batch_first=True).to(dev)
    xs = rand(B, T, E, device=dev, grad=True)
    res["lstm_fwd"] = timer(lambda: lstm(xs))
    out, _ = lstm(xs)
    res["lstm_bwd"] = timer(backward_fn(out, rand(B, T, H, device=dev, lo=-0.01, hi=0.01), [xs, *lstm.parameters()]))

    h, a = rand(B, T, H, device=dev), rand(B, H, device=dev)
    res["broadcast_add_fwd"] = timer(lambda: h + a[:, None, :])
    res["broadcast_add_bwd"] = timer(lambda: h.sum(1))

    for name, n_out, relu in (("dense_fc", H, True), ("dense_out", V, False)):
        lin = nn.Linear(H, n_out).to(dev)
        xin = rand(N, H, device=dev, grad=True)
        fwd = (lambda: torch.relu(lin(xin))) if relu else (lambda: lin(xin))
        res[name + "_fwd"] = timer(fwd)
        res[name + "_bwd"] = timer(backward_fn(fwd(), rand(N, n_out, device=dev, lo=-0.01, hi=0.01),
                                               [xin, *lin.parameters()]))
    return {f"{op}/B:{B}/T:{T}": s for op, s in res.items()}


def batch_ops(dev, timer, B):
    res = {}
    lin = nn.Linear(D, H).to(dev)
    feat = rand(B, D, device=dev, lo=0, hi=1)
    res["dense_img_fwd"] = timer(lambda: torch.relu(lin(feat)))
    res["dense_img_bwd"] = timer(backward_fn(torch.relu(lin(feat)), rand(B, H, device=dev), list(lin.parameters())))
    res["dropout_feat_fwd"] = timer(lambda: torch.native_dropout(feat, P_DROP, True))
    # One decoding step, as a PyTorch inference loop runs it: the LSTM on one timestep with state.
    lstm = nn.LSTM(E, H, batch_first=True).to(dev)
    x1, state = rand(B, 1, E, device=dev), (rand(1, B, H, device=dev), rand(1, B, H, device=dev))
    with torch.no_grad():
        res["lstm_step"] = timer(lambda: lstm(x1, state))
    res["lstm_step_gemm"] = res["lstm_step"]  # the engine's other CUDA route for the same step
    return {f"{op}/B:{B}": s for op, s in res.items()}


LARGE_P = 1 << 24  # bench_kernels.cpp's second parameter count: a bandwidth-bound size


def param_ops(dev, timer, large):
    """The optimizer ops over the decoder's parameters, or (large) over one tensor of LARGE_P."""
    shapes = [(LARGE_P,)] if large else [(H, D), (H,), (V, E), (4 * H, E), (4 * H, H), (4 * H,), (4 * H,), (H, H),
                                         (H,), (V, H), (V,)]
    params = [nn.Parameter(rand(*s, device=dev, lo=-0.05, hi=0.05)) for s in shapes]
    for p in params:
        p.grad = rand(*p.shape, device=dev, lo=-0.01, hi=0.01)
    opt = torch.optim.Adam(params, lr=1e-3)
    grads = [p.grad for p in params]
    res = {
        "adam": timer(opt.step),
        # clip_grad_norm_'s reduction, brought to the host as the engine's global_norm does.
        "grad_norm": timer(lambda: torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
                           .item()),
        "grad_scale": timer(lambda: torch._foreach_mul_(grads, 1.0)),
    }
    return {f"{op}/P:{LARGE_P if large else engine_param_count()}": s for op, s in res.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    ap.add_argument("--min-time", type=float, default=0.2, help="seconds measured per op, at least")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 (the engine is plain FP32)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    dev = torch_device(args.device, args.threads, args.tf32)
    torch.manual_seed(0)
    timer = Timer(dev, args.min_time)
    results = {}
    groups = ([(token_ops, (B, T)) for B, T in SHAPES] + [(batch_ops, (B,)) for B in BATCHES]
              + [(param_ops, (large,)) for large in (False, True)])
    if dev.type == "cuda":
        groups.append((token_ops, (*BANDWIDTH_SHAPE, True)))
    for fn, args_ in groups:
        try:
            results.update({k: v for k, v in fn(dev, timer, *args_).items() if v is not None})
        except Exception as e:  # noqa: BLE001 -- report and go on with the other groups
            print(f"kernels.py: {fn.__name__}{args_}: {type(e).__name__}: {e}", file=sys.stderr)
    doc = {"torch": torch.__version__, "device": args.device, "threads": torch.get_num_threads(),
           "tf32": args.tf32, "results": [{"name": k, "seconds": v} for k, v in results.items()]}
    emit(doc, args.json, lambda r: f"{r['name']:40s} {r['seconds'] * 1e6:12.1f} us")


if __name__ == "__main__":
    main()
