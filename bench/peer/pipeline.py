#!/usr/bin/python3
"""PyTorch peer of `caption describe IMAGES` at beam 1: image files to greedy captions end to
end, with the model of a model directory (tools/torch_captioner.py): DataLoader workers decode
and resize (PIL, as config.json says) while the main process runs the ResNet50 encoder and the
LSTM decoder's greedy decode on the previous batch. Prints images/s.

  /usr/bin/python3 bench/peer/pipeline.py @list.txt --batch 32 --threads 2 --device cpu --json
  python3 bench/peer/pipeline.py photos/ --device cuda --dtype bf16 --channels-last --output captions.jsonl

Inputs are image files, folders (recursive, by extension) and @list files (one path a line,
relative to the list's folder), as for the CLI. Timing: the model is loaded and one image is
run through the whole pipeline first (as the engine's load and first image, which bench/compare.py
subtracts on its side); the timed part is everything after: DataLoader start, decoding,
encoding, greedy decoding, captions back on the host. --threads sets torch's intra-op threads
and, unless --workers says otherwise, the number of decoding workers (the CLI's --threads is
its decoding threads; its compute threads follow OPENBLAS_NUM_THREADS/OMP_NUM_THREADS).
--dtype fp32 is plain FP32 (TF32 off, as the engine); bf16 runs the encoder under CUDA autocast
(the decoder stays FP32).
"""
import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import torch_captioner as tc  # noqa: E402
from kernels import torch_device  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def expand_inputs(inputs):
    out = []
    for item in inputs:
        if item.startswith("@") and len(item) > 1:
            base = os.path.dirname(item[1:])
            with open(item[1:]) as f:
                for line in f:
                    entry = line.strip()
                    if entry:
                        out.extend(expand_inputs([os.path.join(base, entry)]))
        elif os.path.isdir(item):
            for root, dirs, files in os.walk(item):
                dirs.sort()
                out.extend(os.path.join(root, f) for f in sorted(files) if Path(f).suffix.lower() in EXTENSIONS)
        else:
            out.append(item)
    return out


class Images(torch.utils.data.Dataset):
    def __init__(self, paths, cfg):
        self.paths, self.cfg = paths, cfg

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        try:
            return i, tc.load_image(self.paths[i], self.cfg)
        except Exception as e:  # an unreadable image is reported and left out, as in the engine
            return i, "%s: %s" % (self.paths[i], e)


def collate(items):
    ok = [(i, a) for i, a in items if not isinstance(a, str)]
    errors = [a for _, a in items if isinstance(a, str)]
    pixels = torch.from_numpy(np.stack([a for _, a in ok])) if ok else None
    return [i for i, _ in ok], pixels, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+", help="image files, folders and @list files")
    ap.add_argument("--model", default=str(REPO / "models" / "flickr8k-resnet50c4"))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    ap.add_argument("--workers", type=int, help="DataLoader decoding workers (default: --threads)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="bf16: CUDA autocast on the encoder")
    ap.add_argument("--channels-last", action="store_true", help="run the encoder in NHWC")
    ap.add_argument("--output", help="write the captions here, one JSON line per image")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args()
    workers = args.threads if args.workers is None else args.workers
    if args.dtype == "bf16" and args.device != "cuda":
        raise SystemExit("pipeline.py: --dtype bf16 is for --device cuda")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("pipeline.py: --device cuda but torch sees no CUDA device")
    device = torch_device(args.device, args.threads)  # plain FP32 (no TF32), as the engine
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False  # shapes vary (a short last batch); no autotuning inside the timing
    paths = expand_inputs(args.inputs)
    if not paths:
        raise SystemExit("pipeline.py: no images")
    model = tc.load_model(args.model, device)
    if model.encoder is None:
        raise SystemExit("pipeline.py: %s has no encoder" % args.model)
    enc_cfg = model.config["encoder"]
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    if args.channels_last:
        model.encoder.to(memory_format=torch.channels_last)

    def run(pixels):
        with torch.no_grad():
            x = pixels.to(device, non_blocking=True)
            if args.dtype == "bf16":
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    feats = model.encoder(x, memory_format)
            else:
                feats = model.encoder(x, memory_format)
            return model.greedy(feats)  # ends with the ids on the host, so it waits for the device

    t = time.perf_counter()
    run(torch.from_numpy(tc.load_image(paths[0], enc_cfg)[None]))  # warm-up: first image, first kernels
    warmup = time.perf_counter() - t

    loader = torch.utils.data.DataLoader(Images(paths, enc_cfg), batch_size=args.batch, num_workers=workers,
                                         collate_fn=collate, pin_memory=device.type == "cuda")
    captions = {}
    failed = 0
    t0 = time.perf_counter()
    for indices, pixels, errors in loader:
        for e in errors:
            print("warning: %s (skipped)" % e, file=sys.stderr)
        failed += len(errors)
        if indices:
            for i, ids in zip(indices, run(pixels)):
                captions[i] = tc.caption_text(model.vocab, ids)
    seconds = time.perf_counter() - t0

    if args.output:
        with open(args.output, "w") as f:
            for i in sorted(captions):
                f.write(json.dumps({"image": os.path.basename(paths[i]), "caption": captions[i]}) + "\n")
    info = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "device": args.device,
        "device_name": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor(),
        "threads": torch.get_num_threads(),
        "workers": workers,
        "batch": args.batch,
        "dtype": args.dtype,
        "channels_last": args.channels_last,
        "model": args.model,
        "images": len(captions),
        "failed": failed,
        "warmup_seconds": warmup,
        "seconds": seconds,
        "images_per_s": len(captions) / seconds,
    }
    if args.json:
        print(json.dumps(info))
    else:
        print("pipeline: %d images in %.2f s, %.1f images/s (batch %d, %d workers, %s %s, torch %s, %d threads)"
              % (len(captions), seconds, info["images_per_s"], args.batch, workers, args.device, args.dtype,
                 info["torch"], info["threads"]))
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
