#!/usr/bin/python3
"""Writes the bad-input corpus of tests/test_bad_inputs.cpp into this folder (README.md lists
every file and what is wrong with it). Deterministic: rerunning rewrites the same bytes.
PNG and safetensors files are assembled by hand (zlib + struct + json) so that every byte is
under control; JPEGs come from Pillow and are then cut or patched.

Run: /usr/bin/python3 tests/data/bad/make_bad.py
"""
import io
import json
import os
import struct
import zlib

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))


def write(rel, data):
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    print(f"{rel}: {len(data)} bytes")


# ---- PNG by hand ----

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(pixels, bit_depth, colour_type):
    """pixels: HxWxC array of uint8 or uint16 (big-endian on disk); colour type 0 grey, 2 RGB, 6 RGBA."""
    h, w = pixels.shape[:2]
    raw = pixels.astype(">u2" if bit_depth == 16 else "u1").reshape(h, -1).tobytes()
    row = len(raw) // h
    scanlines = b"".join(b"\0" + raw[y * row:(y + 1) * row] for y in range(h))  # filter 0 (none)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(scanlines, 9)) + chunk(b"IEND", b"")


def png_header_only(w, h):
    """A PNG that claims w x h RGB pixels and holds no image data: only the header can be read."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def jpeg(img, **kw):
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **kw)
    return buf.getvalue()


def gradient(h, w):
    """A smooth RGB picture (compresses well, so the files stay small)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([255 * x / max(w - 1, 1), 255 * y / max(h - 1, 1), 128 + 0 * x], axis=-1)


# ---- images that must be refused ----

write("images/empty.jpg", b"")

photo = jpeg(Image.fromarray(gradient(48, 64).astype(np.uint8)), quality=90)
# Cut inside the entropy-coded data: no end-of-image marker (libjpeg alone would only warn).
write("images/truncated.jpg", photo[:len(photo) * 6 // 10])

# The first DHT segment's 16 code-length counts all set to 255: 4080 codes, more than the 256 a
# table may hold, so libjpeg stops with "Bogus Huffman table definition". Segment lengths are
# unchanged, so the file still walks cleanly marker by marker up to its end-of-image marker.
dht = photo.index(b"\xff\xc4")
bad = bytearray(photo)
bad[dht + 5:dht + 21] = b"\xff" * 16
write("images/bad_huffman.jpg", bytes(bad))

write("images/not_an_image.jpg", b"This is a plain text file with a .jpg name.\n")

# 20000 x 20000 = 4e8 pixels, above the default limit of 1e8: refused from the header alone.
write("images/huge_header.png", png_header_only(20000, 20000))
# The same claim in a JPEG frame header (SOF0, 3 components), then end-of-image.
sof = struct.pack(">BHHB", 8, 20000, 20000, 3) + b"\x01\x11\x00\x02\x11\x01\x03\x11\x01"
write("images/huge_header.jpg", b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", 2 + len(sof)) + sof + b"\xff\xd9")

# ---- valid but unusual images: these must be captioned ----

rgba = np.concatenate([gradient(24, 32), np.full((24, 32, 1), 0.0)], axis=-1)
rgba[..., 3] = np.linspace(0, 255, 32)[None, :]  # transparent on the left, opaque on the right
write("unusual/alpha.png", png(rgba.astype(np.uint8), 8, 6))
write("unusual/rgb16.png", png((gradient(24, 32) * 257).astype(np.uint16), 16, 2))
write("unusual/one_pixel.png", png(np.array([[[200, 120, 40]]], dtype=np.uint8), 8, 2))
grey = (gradient(32, 32)[..., 0] * 0.5 + gradient(32, 32)[..., 1] * 0.5).astype(np.uint8)
write("unusual/grey.jpg", jpeg(Image.fromarray(grey, "L"), quality=90))
write("unusual/cmyk.jpg", jpeg(Image.new("CMYK", (32, 24), (0, 200, 255, 40)), quality=90))

# ---- safetensors (read as a features file) ----

def safetensors(header, data, header_len=None):
    text = json.dumps(header, separators=(",", ":")).encode() if isinstance(header, dict) else header
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text) if header_len is None else header_len) + text + data


def f32(n, seed):
    return np.random.default_rng(seed).standard_normal(n).astype("<f4").tobytes()


two = f32(16, 1)  # two 8-d features
ok_header = {"a.jpg": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]},
             "b.jpg": {"dtype": "F32", "shape": [8], "data_offsets": [32, 64]}}
write("safetensors/dim8.safetensors", safetensors(ok_header, two))  # valid; the wrong size for the model
write("safetensors/truncated_payload.safetensors", safetensors(ok_header, two[:40]))
write("safetensors/out_of_range_offsets.safetensors", safetensors(
    {"a.jpg": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]},
     "b.jpg": {"dtype": "F32", "shape": [8], "data_offsets": [1 << 40, (1 << 40) + 32]}}, two))
write("safetensors/overlapping_offsets.safetensors", safetensors(
    {"a.jpg": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]},
     "b.jpg": {"dtype": "F32", "shape": [8], "data_offsets": [16, 48]}}, two))
write("safetensors/header_too_long.safetensors", safetensors(ok_header, two, header_len=1 << 20))
write("safetensors/wrong_dtype.safetensors", safetensors(
    {"a.jpg": {"dtype": "I64", "shape": [4], "data_offsets": [0, 32]},
     "b.jpg": {"dtype": "F32", "shape": [8], "data_offsets": [32, 64]}}, two))
write("safetensors/wrong_shape.safetensors", safetensors(
    {"a.jpg": {"dtype": "F32", "shape": [2, 4], "data_offsets": [0, 32]},
     "b.jpg": {"dtype": "F32", "shape": [8], "data_offsets": [32, 64]}}, two))
nan = bytearray(two)
nan[40:44] = struct.pack("<f", float("nan"))  # b.jpg's second value
write("safetensors/non_finite.safetensors", safetensors(ok_header, bytes(nan)))
# Hand-written header text: a Python dict cannot hold a key twice.
write("safetensors/duplicate_names.safetensors", safetensors(
    b'{"a.jpg":{"dtype":"F32","shape":[8],"data_offsets":[0,32]},'
    b'"a.jpg":{"dtype":"F32","shape":[8],"data_offsets":[32,64]}}', two))
# ---- model directory files ----

# Decoder weights (a model directory's decoder.safetensors) with every name a decoder needs, each of
# shape [1].
names = ["img_fc.weight", "img_fc.bias", "embed.weight", "lstm.weight_ih_l0", "lstm.weight_hh_l0",
         "lstm.bias_ih_l0", "lstm.bias_hh_l0", "fc.weight", "fc.bias", "out.weight", "out.bias"]
write("model/decoder_wrong_shapes.safetensors", safetensors(
    {n: {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]} for i, n in enumerate(names)},
    f32(len(names), 2)))
write("model/config_malformed.json", b'{"format": "caption-model/1", "decoder": {"feature_dim": 1024,\n')
write("model/config_missing_key.json", json.dumps(
    {"format": "caption-model/1",
     "decoder": {"embed_dim": 50, "hidden_dim": 256, "max_len": 40, "vocab": "vocab.txt",
                 "weights": "decoder.safetensors"}}, indent=2).encode() + b"\n")
write("model/vocab_duplicates.txt", b"<pad>\n<start>\n<end>\n<unk>\na\ndog\nruns\ndog\n")
write("model/vocab_non_utf8.txt", b"<pad>\n<start>\n<end>\n<unk>\na\nd\xf6g\n")

# ---- caption files (Flickr8k token format: IMAGE#N<TAB>caption) ----

write("captions/non_utf8.txt", b"img0.jpg#0\tA dog runs on grass .\nimg1.jpg#0\tA man rides a caf\xe9 bike .\n")
write("captions/empty_caption.txt", b"img0.jpg#0\tA dog runs on grass .\nimg1.jpg#0\t   \n")
write("captions/missing_tab.txt", b"img0.jpg#0\tA dog runs on grass .\nimg1.jpg#0 A man rides a bike .\n")
