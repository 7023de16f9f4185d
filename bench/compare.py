#!/usr/bin/env python3
"""Engine vs PyTorch, in one run on one machine: runs the Google Benchmark binaries
(bench_train_step; bench_kernels with --kernels; bench_encoder and bench_encoder_ops with --encoder;
bench_decode with --decode) and the PyTorch peers in bench/peer/ with the same thread count, and
prints ONE markdown table:

  | work | engine | PyTorch | ratio | device |

ratio is engine throughput / PyTorch throughput (above 1: the engine is faster). The CPU
training-step rows also give the time of the step's OpenBLAS products replayed alone in the same
run: no engine step can beat it, so PyTorch's time over it bounds the ratio. With
--out DIR it also writes DIR/<device>-<date>.md (the table) and .json (every raw result).

--encoder: the whole encoder (images/s), then its ops one by one: preprocessing (uint8 batch to
normalised float NHWC, both normalisations) and every distinct convolution shape of ResNet50 (v1
and v1.5) with its fused epilogue, at batch 32 on CUDA and 16 on the CPU (the pieces the CPU
encoder runs), against F.conv2d + bias + epilogue in the faster layout (named in the PyTorch column).

--decode: one decoder step at 32 and 96 rows (tokens/s), and the captioning of 32 images' reference
features with the bundled model, greedy and beam 3 (images/s; beam search has no PyTorch peer), against
tools/torch_captioner.py's greedy loop; the notes compare the mean caption lengths. Needs the
features in --data (skipped with a note without them).

--pipeline adds end to end captioning, image files to greedy captions at batch 32 (the model of
models/flickr8k-resnet50c4): `caption describe` against bench/peer/pipeline.py (torchvision
ResNet50 + nn.LSTM greedy decode, DataLoader decoding workers) on the same image lists, with the
same batch and threads: the first --pipeline-images Flickr8k test-split images (224x224) and the
20 full-size originals repeated to --pipeline-originals images (under distinct names). The
engine's images/s is (n - m) / (t(n images) - t(m images)) from the wall-clock times of whole
`caption describe` runs (the quicker of two runs on the first m images, m = one batch plus n's
last partial batch), so process start, model loading and the first call of each batch shape
drop out; the peer times itself after loading and one warm-up image. Needs ../shared (--data);
skipped with a note without it. The notes give how many captions are identical on both sides.

With --kernels or --encoder, bench_kernels also measures two ceilings in the same run: the copy
bandwidth (cudaMemcpyAsync device to device, or std::memcpy on the engine's threads; bytes read
plus bytes written, as the ops count theirs) and the FP32 SGEMM rate of the engine's own GEMM
path. Every GB/s in the table is also given as a fraction of that copy bandwidth and every FP32
GFLOP/s as a fraction of that SGEMM rate; lines after the table hold the memory-bound ops of
issue #5 (embedding backward, softmax + cross-entropy, Adam, dropout) to at least 80% of the copy.

Stopped by SIGTERM (scripts/gpu-check.sh's time limit), it still writes the table: the rows
measured by then, the engine's per-op rows whose peers had not run, and a line saying so.

  /usr/bin/python3 bench/compare.py --build build --device cpu --threads 2 --out bench/results
"""
import argparse
import datetime
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# bench_kernels' ceilings (see the docstring); not rows of the table.
CEILING_OPS = ("copy", "sgemm_peak")
# Issue #5: these memory-bound ops at no less than this fraction of the measured copy bandwidth.
BANDWIDTH_GOAL = 0.80
BANDWIDTH_GOAL_OPS = ("embedding_bwd", "softmax_xent_fwd", "softmax_xent_bwd", "adam", "dropout_fwd", "dropout_bwd",
                      "dropout_feat_fwd")


class Stopped(Exception):
    """SIGTERM arrived: main() writes the table with the rows it has."""


def stop_on_sigterm(signum, frame):
    # timeout(1) signals compare.py and then its process group, which can arrive as a second
    # SIGTERM while the table is being written.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Stopped()


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def gpu_model():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "unknown GPU"


def run(cmd, env, timeout, log):
    """Runs cmd; returns (stdout, error message or None)."""
    print("+ " + " ".join(str(c) for c in cmd), file=sys.stderr, flush=True)
    try:
        p = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        log.append({"cmd": [str(c) for c in cmd], "error": f"timed out after {timeout} s"})
        return None, f"timed out after {timeout} s"
    except OSError as e:
        log.append({"cmd": [str(c) for c in cmd], "error": str(e)})
        return None, str(e)
    if p.stderr:
        sys.stderr.write(p.stderr[-4000:])
    if p.returncode != 0:
        err = f"exit {p.returncode}: {p.stderr.strip()[-300:]}"
        log.append({"cmd": [str(c) for c in cmd], "error": err})
        return None, err
    return p.stdout, None


def engine_results(binary, device, min_time, timeout, env, log, ops=None, skip=None):
    """Google Benchmark JSON of `binary`, restricted to `device` (and to the ops named in `ops`, or
    to all but those in `skip`); {name without suffix: run}. Runs that skipped themselves are
    logged as notes."""
    if not binary.exists():
        log.append({"cmd": [str(binary)], "error": "not built"})
        return {}, None
    other = "cuda" if device == "cpu" else "cpu"
    pattern = (f"^({'|'.join(ops)})/{device}/" if ops
               else f"-^({'|'.join(skip)})/|/{other}/" if skip  # a leading '-' negates the filter
               else f"/{device}/")
    out, err = run([binary, "--benchmark_format=json", f"--benchmark_filter={pattern}",
                    f"--benchmark_min_time={min_time}"], env, timeout, log)
    if out is None:
        return {}, err
    try:
        doc = json.loads(out)
    except json.JSONDecodeError:  # e.g. no benchmark for this device (a build without CUDA)
        log.append({"cmd": [str(binary)], "error": "no benchmark results: " + out.strip()[-300:]})
        return {}, None
    runs = {}
    for b in doc.get("benchmarks", []):
        name = re.sub(r"/(real|manual)_time$", "", b["name"])
        if b.get("error_occurred"):
            log.append({"note": f"{name} skipped: {b.get('error_message', '')}"})
        elif b.get("run_type", "iteration") == "iteration":
            runs[name] = b
    return runs, doc


def peer_results(python, script, args, env, timeout, log):
    out, err = run([python, script] + args + ["--json"], env, timeout, log)
    if out is None:
        return None, err
    try:
        return json.loads(out), None
    except json.JSONDecodeError:
        log.append({"cmd": [str(python), str(script)], "error": "no JSON: " + out.strip()[-300:]})
        return None, "no JSON"


def interleaved(rounds, run_engine, run_peer, peer_key, peer_seconds):
    """Engine and peer alternately, `rounds` times, keeping each row's fastest round on each side:
    on a shared machine a slow spell then costs one round of both sides instead of skewing the
    ratio of a single run each. Returns (engine runs, raw engine JSON per round, peer JSON)."""
    eng, docs, peer = {}, [], None
    for _ in range(rounds):
        runs, doc = run_engine()
        docs.append(doc)
        for name, b in runs.items():
            if name not in eng or seconds(b) < seconds(eng[name]):
                eng[name] = b
        p = run_peer()
        if p is None:
            continue
        if peer is None:
            peer = p
            continue
        best = {peer_key(r): r for r in peer.get("results", [])}
        for r in p.get("results", []):
            k = peer_key(r)
            if k not in best or peer_seconds(r) < peer_seconds(best[k]):
                best[k] = r
        peer["results"] = list(best.values())
    return eng, docs, peer


def seconds(run):
    """Seconds per iteration of a Google Benchmark run (real or manual time)."""
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[run.get("time_unit", "ns")]
    return run["real_time"] * scale


def fmt_time(s):
    return f"{s * 1e3:.2f} ms" if s >= 1e-3 else f"{s * 1e6:.1f} µs"


def split_ceilings(runs):
    """Takes bench_kernels' ceiling runs out of `runs`: {"copy": run, "sgemm_peak": run} (those measured)."""
    return {name.split("/")[0]: runs.pop(name) for name in list(runs) if name.split("/")[0] in CEILING_OPS}


def of_ceiling(value, ceiling, what):
    """' (45% of copy)', or '' without a ceiling."""
    return f" ({value / ceiling:.0%} of {what})" if ceiling else ""


def with_peers(engine, peer):
    """(name, engine result, op, shape parts, peer result or None) for each per-call benchmark
    "<op>/<device>/<shape>", whose peer result is named "<op>/<shape>" (without the engine-only
    variant "graphs": the same work run as CUDA graphs)."""
    peer_by_name = {r["name"]: r for r in (peer or {}).get("results", [])}
    for name, b in engine.items():
        op, _, *shape = name.split("/")
        yield name, b, op, shape, peer_by_name.get("/".join([op] + [s for s in shape if s != "graphs"]))


def op_rows(engine, peer, sgemm, copy_bw):
    """Rows of per-call benchmarks ("<op>/<device>/<shape>", beside the peer result named
    "<op>/<shape>"), grouped by op in registration order: time per call and the engine's rate
    (GFLOP/s and GB/s with their fraction of the ceilings, tok/s, images/s); the peer's time, with
    its note (e.g. the layout it ran in); ratio = PyTorch time / engine time."""
    first = {}
    for name in engine:
        first.setdefault(name.split("/")[0], len(first))
    rows = []
    for name, b, op, shape, p in sorted(with_peers(engine, peer), key=lambda r: first[r[2]]):
        t = seconds(b)
        rate = ""
        if "flop_per_s" in b:
            rate = f", {b['flop_per_s'] / 1e9:.1f} GFLOP/s" + of_ceiling(b["flop_per_s"], sgemm, "SGEMM")
        elif "bytes_per_s" in b:
            rate = f", {b['bytes_per_s'] / 1e9:.1f} GB/s" + of_ceiling(b["bytes_per_s"], copy_bw, "copy")
        elif "tokens_per_s" in b:
            rate = f", {b['tokens_per_s']:,.0f} tok/s"
        elif "images_per_s" in b:
            rate = f", {b['images_per_s']:,.1f} images/s"
        rows.append({
            "work": op + " " + " ".join(s.replace(":", "=") for s in shape),
            "engine": fmt_time(t) + rate,
            "pytorch": fmt_time(p["seconds"]) + (f" ({p['note']})" if p.get("note") else "") if p else "n/a",
            "ratio": f"{p['seconds'] / t:.2f}×" if p else "n/a",
        })
    return rows


def encoder_rows(enc, epeer, sgemm, device):
    """Rows of the whole encoder (images/s): each engine mode beside PyTorch in its precision, and
    the plain FP32 mode on CUDA also beside PyTorch bf16."""
    epeer_by_name = {r["name"]: r for r in (epeer or {}).get("results", [])}
    rows = []
    for name, b in enc.items():
        _, _, stages, bs, mode = name.split("/")
        precision = mode.split("-")[0]  # fp32-nchw-timed: FP32 in another layout / algorithm choice
        e_ips = b["images_per_s"]
        peers = [(m, epeer_by_name.get(f"encoder/{stages}/{bs}/{m}")) for m in (precision, "bf16")]
        for pm, p in peers[: 2 if device == "cuda" and mode == "fp32" else 1]:
            rows.append({
                "work": f"encoder {stages.replace(':', '=')} {bs.replace(':', '=')} {mode}"
                        + (f" vs PyTorch {pm}" if pm != precision else ""),
                "engine": f"{e_ips:,.1f} images/s ({b['flop_per_s'] / 1e9:.0f} GFLOP/s"
                          + (f", {b['flop_per_s'] / sgemm:.0%} of SGEMM" if sgemm and precision == "fp32" else "")
                          + ")",
                "pytorch": f"{p['images_per_s']:,.1f} images/s" if p else "n/a",
                "ratio": f"{e_ips / p['images_per_s']:.2f}×" if p else "n/a",
            })
    return rows


def train_step_rows(eng, peer, log):
    """Rows of the training step (tokens/s) by T, then B, the CUDA-graph variant after the plain one."""
    peer_by_key = {(r["B"], r["T"]): r for r in (peer or {}).get("results", [])}
    rows = []
    for name, b in sorted(eng.items(), key=lambda kv: (kv[0].split("/")[3], int(kv[0].split("/")[2][2:]),
                                                       len(kv[0].split("/")))):
        _, _, bs, ts, *variant = name.split("/")  # variant: ["graphs"] for the CUDA-graph runs
        B, T = int(bs[2:]), ts[2:]
        e_tps = b.get("tokens_per_s")
        p = peer_by_key.get((B, T))
        rows.append({
            "work": f"train step B={B} T={T}" + "".join(" " + v for v in variant),
            # CPU: the step's OpenBLAS products replayed alone in the same run, the step's floor.
            "engine": f"{e_tps:,.0f} tok/s ({fmt_time(seconds(b))}"
                      + (f"; GEMMs alone {b['gemm_ms']:.2f} ms)" if "gemm_ms" in b else ")"),
            "pytorch": f"{p['tokens_per_s']:,.0f} tok/s ({p['ms_per_step']:.2f} ms)" if p else "n/a",
            # Same batches on both sides, so tokens/s ratios are step-time ratios.
            "ratio": f"{e_tps / p['tokens_per_s']:.2f}×" if p else "n/a",
        })
        if b.get("pool_allocs", 0):
            log.append({"warning": f"{name}: {b['pool_allocs']:.0f} pool allocations after warm-up"})
    return rows


def caption_length_notes(engine, peer, log):
    """Notes comparing the engine's and the peer's mean caption length (words_per_image) where both
    decoded the same features: the same length is a sign of the same captions, so of the same work."""
    for name, b, _, _, p in with_peers(engine, peer):
        if "words_per_image" in b:
            log.append({"note": f"{name}: mean caption length {b['words_per_image']:.2f} words"
                                + (f", PyTorch {p['words_per_image']:.2f}" if p and "words_per_image" in p else "")})


def engine_build(build):
    """`caption --version` minus its first line (CPU vector width, BLAS, CUDA, OpenCV), or ""."""
    try:
        out = subprocess.run([str(build / "caption"), "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return "; ".join(out.stdout.strip().splitlines()[1:]) if out.returncode == 0 else ""


def ceiling_lines(ceil, kernels, device, threads, raw):
    """Lines after the table: the ceilings measured in this run, then each memory-bound op of issue #5
    against the copy bandwidth (with --kernels). Records both in raw."""
    copy, sgemm = ceil.get("copy"), ceil.get("sgemm_peak")
    if not copy and not sgemm:
        return []
    gpu = device == "cuda"
    parts = []
    if copy:
        mib = copy["name"].split("/")[2].split(":")[1]
        how = "device to device, cudaMemcpyAsync" if gpu else f"std::memcpy on {threads} threads"
        parts.append(f"copy of {mib} MiB ({how}) {copy['bytes_per_s'] / 1e9:,.1f} GB/s, bytes read plus written")
    if sgemm:
        n = sgemm["name"].split("/")[2].split(":")[1]
        how = "the engine's cuBLAS handle, pedantic FP32" if gpu else f"OpenBLAS, {threads} threads"
        parts.append(f"SGEMM {n}³ ({how}) {sgemm['flop_per_s'] / 1e9:,.0f} GFLOP/s")
    lines = ["", "Ceilings measured in this run by bench_kernels: " + "; ".join(parts) + ". The percentages in the "
             "table are of these: GB/s of the copy, FP32 GFLOP/s of the SGEMM"
             + (" (the engine's cuBLAS handle has no TF32 mode, so TF32 rows get none)." if gpu else ".")]
    raw["ceilings"] = {"copy_bytes_per_s": copy and copy["bytes_per_s"], "sgemm_flop_per_s": sgemm and sgemm["flop_per_s"]}
    goal = sorted(((name, b) for name, b in kernels.items()
                   if name.split("/")[0] in BANDWIDTH_GOAL_OPS and "bytes_per_s" in b),
                  key=lambda kv: BANDWIDTH_GOAL_OPS.index(kv[0].split("/")[0]))  # by op, shapes in run order
    if not copy or not goal:
        return lines
    lines += ["", f"Memory-bound ops against the copy bandwidth (issue #5: at least {BANDWIDTH_GOAL:.0%}). A call that "
              f"moves less than the last-level cache holds ({'the L2' if gpu else 'L2 and L3'}) finds its data there "
              "from the previous call, so it can pass 100%:"]
    raw["bandwidth_goal"] = []
    met = 0
    for name, b in goal:
        op, _, *shape = name.split("/")
        frac = b["bytes_per_s"] / copy["bytes_per_s"]
        per_call = b["bytes_per_s"] * seconds(b)
        met += frac >= BANDWIDTH_GOAL
        lines.append(f"- {op} {' '.join(s.replace(':', '=') for s in shape)}: {frac:.0%} of the copy bandwidth "
                     f"({per_call / 1e6:.2f} MB per call): " + ("meets" if frac >= BANDWIDTH_GOAL else "below") +
                     f" {BANDWIDTH_GOAL:.0%}")
        raw["bandwidth_goal"].append({"name": name, "fraction": frac, "bytes_per_call": per_call,
                                      "meets": frac >= BANDWIDTH_GOAL})
    lines.append(f"- {met} of {len(goal)} meet {BANDWIDTH_GOAL:.0%}.")
    return lines


def read_captions(path):
    """{image name: caption} of a JSONL captions file (missing file: empty)."""
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                d = json.loads(line)
                out[d["image"]] = d["caption"]
    return out


def pipeline_lists(data, tmp, n_images, n_originals):
    """[(label, @list path, count)]: the first n_images test-split images, and the originals
    repeated to n_originals through symbolic links with distinct names (the CLI skips a second
    image with an earlier one's file name)."""
    names = []
    split = data / "text" / "Flickr_8k.testImages.txt"
    if split.exists():
        names = [n.strip() for n in split.read_text().splitlines() if n.strip()]
    images = [data / "images" / n for n in names if (data / "images" / n).is_file()]
    if not images:  # a copy without the split file
        images = sorted((data / "images").glob("*.jpg"))
    images = images[:n_images]
    originals = sorted((data / "originals").glob("*.jpg")) if (data / "originals").is_dir() else []
    links = []
    if originals:
        (tmp / "originals").mkdir()
        for k in range(n_originals):
            src = originals[k % len(originals)]
            links.append(tmp / "originals" / f"{k:04d}_{src.name}")
            links[-1].symlink_to(src.resolve())
    lists = []
    for label, paths in (("224px", images), ("originals", links)):
        if len(paths) < 2:
            continue
        path = tmp / f"{label}.txt"
        path.write_text("".join(str(p.resolve() if label == "224px" else p) + "\n" for p in paths))
        lists.append((label, path, len(paths)))
    return lists


def engine_pipeline(binary, base_cmd, listfile, n, batch, tmp, env, timeout, log):
    """Images/s of `caption describe` on the n images of listfile, without start-up, model loading
    and the one-off work per batch shape (cuDNN picks its algorithms on a shape's first call):
    (n - m) / (t(n) - t(m)), t(m) the quicker of a run before and after on the first m images,
    m = one batch plus n's last partial batch, so both runs meet the same batch shapes. Returns
    (images/s or None, raw times); the captions go to <listfile stem>-engine.jsonl."""
    if not binary.exists():
        log.append({"cmd": [str(binary)], "error": "not built"})
        return None, None
    m = min(n - 1, batch + n % batch)
    few = tmp / f"{listfile.stem}-few.txt"
    few.write_text("".join(line + "\n" for line in listfile.read_text().splitlines()[:m]))
    times = []
    for lst, out in ((few, "few"), (listfile, f"{listfile.stem}-engine"), (few, "few")):
        t = time.perf_counter()
        stdout, _ = run(base_cmd + [f"@{lst}", "--output", tmp / f"{out}.jsonl"], env, timeout, log)
        if stdout is None:
            return None, None
        times.append(time.perf_counter() - t)
    tm, tn = min(times[0], times[2]), times[1]
    rate = (n - m) / (tn - tm) if tn > tm else None
    return rate, {"seconds_n": tn, "images_m": m, "seconds_m": [times[0], times[2]], "images_per_s": rate}


def pipeline_rows(args, env, log, raw):
    """Rows for --pipeline: the engine's `caption describe` vs bench/peer/pipeline.py."""
    data = Path(args.data)
    if not (data / "images").is_dir():
        msg = f"--pipeline skipped: no Flickr8k images at {data} (../shared is missing; see --data)"
        print(msg, file=sys.stderr)
        log.append({"note": msg})
        return []
    binary = Path(args.build) / "caption"
    model = REPO / "models" / "flickr8k-resnet50c4"
    B, T = args.pipeline_batch, args.threads
    modes = [("fp32", ["--channels-last"] if args.device == "cpu" else [])]  # PyTorch's faster CPU layout
    if args.device == "cuda":
        modes.append(("bf16", ["--dtype", "bf16", "--channels-last"]))
    rows, raw["pipeline"] = [], {}
    with tempfile.TemporaryDirectory(prefix="caption-pipeline-") as tmp:
        tmp = Path(tmp)
        for label, listfile, n in pipeline_lists(data, tmp, args.pipeline_images, args.pipeline_originals):
            cmd = [binary, "describe", "--model", model, "--batch", B, "--threads", T, "--device", args.device]
            engine_rate, times = engine_pipeline(binary, cmd, listfile, n, B, tmp, env, args.timeout, log)
            rec = raw["pipeline"][label] = {"images": n, "engine": times}
            engine_caps = read_captions(tmp / f"{label}-engine.jsonl")
            for mode, extra in modes:
                out = tmp / f"{label}-peer-{mode}.jsonl"
                p, _ = peer_results(args.python, HERE / "peer" / "pipeline.py",
                                    [f"@{listfile}", "--model", str(model), "--batch", str(B), "--threads", str(T),
                                     "--device", args.device, "--output", str(out)] + extra, env, args.timeout, log)
                rec["peer_" + mode] = p
                peer_caps = read_captions(out)
                common = [k for k in peer_caps if k in engine_caps]
                if common:
                    same = sum(engine_caps[k] == peer_caps[k] for k in common)
                    rec["identical_captions_" + mode] = [same, len(common)]
                    log.append({"note": f"pipeline {label}: engine and PyTorch {mode} greedy captions identical on "
                                        f"{same}/{len(common)} images"})
                rows.append({
                    "work": f"pipeline {label} greedy b{B}" + (f" vs PyTorch {mode}" if mode != "fp32" else ""),
                    "engine": f"{engine_rate:,.1f} images/s" if engine_rate else "n/a",
                    "pytorch": f"{p['images_per_s']:,.1f} images/s" if p else "n/a",
                    "ratio": f"{engine_rate / p['images_per_s']:.2f}×" if p and engine_rate else "n/a",
                })
    if rows:
        log.append({"note": "pipeline: engine images/s = (n - m) / (t(n images) - t(m images)), wall clock of "
                            "whole `caption describe` runs, m = one batch plus n's last partial batch; PyTorch "
                            "timed after loading and one warm-up image"})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build", help="CMake build folder (holds bench/bench_*)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads for both sides")
    ap.add_argument("--python", default=sys.executable, help="Python with torch for the peers")
    ap.add_argument("--kernels", action="store_true", help="also compare the ops one by one")
    ap.add_argument("--encoder", action="store_true", help="also compare the ResNet50 encoder")
    ap.add_argument("--decode", action="store_true", help="also compare decoding: one step, greedy and beam search")
    ap.add_argument("--pipeline", action="store_true", help="also compare end to end captioning of image files")
    ap.add_argument("--data", default=str(Path(os.environ.get("CAPTION_SHARED_DIR") or REPO.parent / "shared")
                                          / "data" / "flickr8k"),
                    help="Flickr8k folder SHARED/data/flickr8k (images/, originals/, text/, reference features) for "
                         "--pipeline and --decode; bench_decode is given SHARED as CAPTION_SHARED_DIR "
                         "(default: $CAPTION_SHARED_DIR or ../shared, as the tests)")
    ap.add_argument("--pipeline-images", type=int, default=256, help="224x224 test-split images for --pipeline")
    ap.add_argument("--pipeline-originals", type=int, default=100,
                    help="full-size images for --pipeline (the 20 originals, repeated)")
    ap.add_argument("--pipeline-batch", type=int, default=32, help="batch size for --pipeline")
    ap.add_argument("--min-time", type=float, default=0.5, help="Google Benchmark min time per benchmark (s)")
    ap.add_argument("--peer-time", type=float, default=2.0, help="PyTorch seconds timed per configuration")
    ap.add_argument("--timeout", type=int, default=900, help="seconds allowed to each benchmark process")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run the training-step and encoder benchmarks and their peers alternately this many "
                         "times, keeping each side's fastest (steadier ratios on a shared machine)")
    ap.add_argument("--out", help="folder for <device>-<date>.md and .json")
    args = ap.parse_args()

    build = Path(args.build)
    env = dict(os.environ)
    # One thread budget for both sides: the engine's pool (OMP_NUM_THREADS; it runs the CPU
    # GEMMs too, on single-threaded OpenBLAS), and on PyTorch's side OpenBLAS (the BLAS of
    # Debian's torch) and torch's intra-op pool.
    env["OPENBLAS_NUM_THREADS"] = str(args.threads)
    env["OMP_NUM_THREADS"] = str(args.threads)
    # Debian's torch runs an OpenMP pool beside OpenBLAS's own pthread pool; with OpenMP's
    # default spin-waiting the two fight over the cores and PyTorch's CPU step time swings
    # 2-15x from run to run (seen on 2 cores). Passive waiting gives PyTorch its best, steady
    # numbers; the engine uses no OpenMP, so this changes nothing on its side.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    device_name = cpu_model() + f" ({args.threads} threads)" if args.device == "cpu" else gpu_model()
    log = []
    raw = {"device": args.device, "device_name": device_name, "threads": args.threads,
           "env": {k: env[k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY")},
           "date": datetime.datetime.now().isoformat(timespec="seconds"), "errors": log,
           "load_average": os.getloadavg()}

    peer_args = ["--device", args.device, "--threads", str(args.threads)]
    rows = []

    keng, ceil, peer, epeer, copy_bw, sgemm = {}, {}, None, None, None, None
    # gpu-check.sh stops this script with SIGTERM at its time limit. The rows measured by then are
    # kept: finished sections whole, and the engine's side of the section cut short (`unfinished`
    # makes its rows without the peer).
    unfinished = [None]

    def measured(rows_of):
        """Wraps an engine run: once it returns, its rows (without peers) are what a stop keeps."""
        def wrapped(*a):
            result = rows_of[0](*a)
            unfinished[0] = lambda: rows_of[1](result)
            return result
        return wrapped

    def op_section(bench, script, peer_extra, key, skip=None, engine_env=None):
        """A section of per-call benchmarks: the engine's, then the peer's, then their rows."""
        runs, raw[f"engine_{key}"] = measured((
            lambda: engine_results(build / "bench" / bench, args.device, args.min_time, args.timeout,
                                   engine_env or env, log, skip=skip),
            lambda r: op_rows(r[0], None, sgemm, copy_bw)))()
        peer_doc, _ = peer_results(args.python, HERE / "peer" / script, peer_args + peer_extra, env, args.timeout, log)
        raw[f"peer_{key}"] = peer_doc
        rows.extend(op_rows(runs, peer_doc, sgemm, copy_bw))
        unfinished[0] = None
        return runs, peer_doc

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        # The ceilings first: the encoder's and the ops' rates are read against them.
        if args.kernels or args.encoder:
            runs, raw["engine_ceilings"] = engine_results(build / "bench" / "bench_kernels", args.device, args.min_time,
                                                          args.timeout, env, log, CEILING_OPS)
            ceil = split_ceilings(runs)
        copy_bw = ceil.get("copy", {}).get("bytes_per_s")
        sgemm = ceil.get("sgemm_peak", {}).get("flop_per_s")
        # Then the sections in the order of what a GPU check must not lose to its time limit: the
        # encoder (issue #3's goal and default), the training step (with its CUDA-graph rows), the
        # ops (the bandwidth goal), decoding, the pipeline.
        if args.encoder:
            enc, raw["engine_encoder"], epeer = interleaved(
                args.rounds,
                measured((lambda: engine_results(build / "bench" / "bench_encoder", args.device, args.min_time,
                                                 args.timeout, env, log),
                          lambda r: encoder_rows(r[0], None, sgemm, args.device))),
                lambda: peer_results(args.python, HERE / "peer" / "encoder.py",
                                     peer_args + ["--min-time", str(args.peer_time)], env, args.timeout, log)[0],
                lambda r: r["name"], lambda r: 1.0 / r["images_per_s"])
            raw["peer_encoder"] = epeer
            rows += encoder_rows(enc, epeer, sgemm, args.device)
            unfinished[0] = None
            op_section("bench_encoder_ops", "encoder_ops.py", ["--min-time", str(min(args.min_time, 0.5))],
                       "encoder_ops")

        eng, raw["engine_train_step"], peer = interleaved(
            args.rounds,
            measured((lambda: engine_results(build / "bench" / "bench_train_step", args.device, args.min_time,
                                             args.timeout, env, log),
                      lambda r: train_step_rows(r[0], None, log))),
            lambda: peer_results(args.python, HERE / "peer" / "train_step.py",
                                 peer_args + ["--min-time", str(args.peer_time)], env, args.timeout, log)[0],
            lambda r: (r["B"], r["T"]), lambda r: r["ms_per_step"])
        raw["peer_train_step"] = peer
        rows += train_step_rows(eng, peer, log)
        unfinished[0] = None

        if args.kernels:  # every op but the ceilings, which were measured first
            keng, _ = op_section("bench_kernels", "kernels.py", ["--min-time", str(min(args.min_time, 0.5))],
                                 "kernels", skip=CEILING_OPS)

        if args.decode:
            denv = dict(env, CAPTION_SHARED_DIR=str(Path(args.data).resolve().parents[1]))
            deng, dpeer = op_section("bench_decode", "decode.py", ["--min-time", str(args.min_time), "--data", args.data],
                                     "decode", engine_env=denv)
            if dpeer and dpeer.get("skipped"):
                log.append({"note": "PyTorch " + dpeer["skipped"]})
            caption_length_notes(deng, dpeer, log)

        if args.pipeline:
            rows += pipeline_rows(args, env, log, raw)
    except Stopped:
        log.append({"error": "stopped by SIGTERM (time limit): the sections after the last row did not run, and "
                             "the one it stopped has no PyTorch column"})
        if unfinished[0]:
            rows += unfinished[0]()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # from here on a stop would only lose the table

    torch_info = ""
    if peer:
        torch_info = f"torch {peer['torch']}, {peer['threads']} threads" + (
            f", cuDNN {peer['cudnn']}, TF32 {'on' if peer['tf32'] else 'off'}" if args.device == "cuda" else "")
    elif epeer:  # stopped before the training step's peer ran
        torch_info = f"torch {epeer['torch']}, {epeer['threads']} threads"
    load = ", ".join(f"{x:.1f}" for x in raw["load_average"])
    lines = [f"Engine vs PyTorch on {device_name}, {raw['date']} ({torch_info or 'PyTorch peer unavailable'}; "
             f"load average before the run {load})."
             + (f" Training-step and encoder rows: each side's best of {args.rounds} alternating rounds."
                if args.rounds > 1 else ""), ""]
    raw["rounds"] = args.rounds
    raw["engine_build"] = engine_build(build)
    if raw["engine_build"]:
        lines += [f"Engine build (`caption --version`): {raw['engine_build']}.", ""]
    lines += ["| work | engine | PyTorch | ratio | device |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['work']} | {r['engine']} | {r['pytorch']} | {r['ratio']} | {device_name} |")
    if not rows:
        lines.append(f"| (no engine results) | n/a | n/a | n/a | {device_name} |")
    lines += ceiling_lines(ceil, keng if args.kernels else {}, args.device, args.threads, raw)
    if log:
        lines.append("")
    for e in log:
        lines.append(f"- {'error' if 'error' in e else 'note'}: " + json.dumps(e))
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^a-z0-9]+", "-", f"{args.device} {device_name}".lower()).strip("-")
        stem = out / f"{slug}-{datetime.datetime.now().strftime('%Y-%m-%d-%H%M')}"
        stem.with_suffix(".md").write_text(table)
        stem.with_suffix(".json").write_text(json.dumps(raw, indent=1))
        print(f"wrote {stem}.md and {stem}.json", file=sys.stderr)
    return 1 if not rows else 0


if __name__ == "__main__":
    sys.exit(main())
