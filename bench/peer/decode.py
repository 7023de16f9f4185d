#!/usr/bin/env python3
"""PyTorch peer of bench/bench_decode.cpp, under the same names, timed by the wall clock and
waiting for the device after each call, as the engine side is:

- decode_step/B:<B> (32, 96): one step of tools/torch_captioner.py's greedy loop for B rows
  (embedding, nn.LSTM on one timestep with its state, the image branch added, fc + ReLU, out),
  then log_softmax over the vocabulary (the engine's step ends with each row's logsumexp);
  random weights at the same sizes (E=50, H=256, V=1660, D=1024), under no_grad.
- decode/beam:1/B:32: Decoder.greedy of tools/torch_captioner.py, as the PyTorch pipeline peer
  runs it, with the bundled model on the reference features of the first 32 test images of
  --data; words_per_image is the mean caption length. Beam search has no peer.

  /usr/bin/python3 bench/peer/decode.py --device cpu --threads 2 --json
"""
import argparse
import sys
from pathlib import Path

import torch
from kernels import Timer, emit, torch_device

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import torch_captioner as tc  # noqa: E402

E, H, V, D = 50, 256, 1660, 1024
IMAGES = 32


def decode_step(device, B, timer):
    torch.manual_seed(0)
    dec = tc.Decoder(D, V, E, H).to(device).eval()
    a = torch.relu(dec.img_fc(torch.rand(B, D, device=device)))
    # Word ids skewed towards small ones, as in bench_decode.cpp; 8 rows cycled through.
    tokens = [(4 + (V - 4) * torch.rand(B, 1, device=device) ** 2).long() for _ in range(8)]
    state, step = None, 0

    def one():
        nonlocal state, step
        h, state = dec.lstm(dec.embed(tokens[step % len(tokens)]), state)
        step += 1
        return torch.log_softmax(dec.out(torch.relu(dec.fc(h[:, 0] + a))), dim=1)

    s = timer(one)
    return s and {"name": f"decode_step/B:{B}", "seconds": s, "tokens_per_s": B / s}


def test_features(data):
    """[IMAGES, D] float32 reference features of the first test-split images, or (None, why)."""
    split, path = data / "text" / "Flickr_8k.testImages.txt", data / "features_resnet50c4.safetensors"
    for p in (split, path):
        if not p.exists():
            return None, f"{p} is missing"
    feats = tc.read_safetensors(path)
    names = [n.strip() for n in split.read_text().splitlines() if n.strip() in feats]
    if len(names) < IMAGES:
        return None, f"{data}: fewer than {IMAGES} test images with features"
    return torch.stack([feats[n] for n in names[:IMAGES]]), None


def greedy(device, data, timer):
    feats, why = test_features(data)
    if feats is None:
        return None, why
    model = tc.load_model(str(REPO / "models" / "flickr8k-resnet50c4"), device)
    words = sum(len(c) for c in model.greedy(feats.to(device)))
    s = timer(lambda: model.greedy(feats.to(device)))  # ends with the ids on the host
    if s is None:
        return None, "greedy decoding failed (see stderr)"
    return {"name": f"decode/beam:1/B:{IMAGES}", "seconds": s, "images_per_s": IMAGES / s,
            "words_per_image": words / IMAGES}, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds timed per configuration, at least")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "flickr8k"),
                    help="Flickr8k folder with text/ and features_resnet50c4.safetensors")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    device = torch_device(args.device, args.threads)
    timer = Timer(device, args.min_time, wall=True)
    with torch.no_grad():
        results = [r for r in (decode_step(device, B, timer) for B in (IMAGES, 3 * IMAGES)) if r]
        g, skipped = greedy(device, Path(args.data), timer)
    if g:
        results.append(g)
    doc = {"torch": torch.__version__, "device": args.device, "threads": torch.get_num_threads(), "results": results}
    if skipped:
        doc["skipped"] = f"decode/beam:1: {skipped}"
    emit(doc, args.json, lambda r: f"{r['name']:30s} {r['seconds'] * 1e3:10.3f} ms")
    if skipped and not args.json:
        print("skipped " + doc["skipped"])


if __name__ == "__main__":
    main()
