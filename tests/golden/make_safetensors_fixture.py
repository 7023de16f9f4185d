#!/usr/bin/python3
"""Writes tests/data/golden/mixed_dtypes.safetensors by hand (struct + json + numpy), in the layout
the `safetensors` package writes for PyTorch: u64 header length, JSON header padded with spaces
to 8 bytes, packed little-endian data. The data is deliberately stored in a different order than
the header lists it, so that readers must honour data_offsets. test_safetensors.cpp holds the
expected values.

Run: /usr/bin/python3 tests/golden/make_safetensors_fixture.py
"""
import json
import os
import struct

import numpy as np

half = np.array([1.0, -2.5, 65504.0, 2.0**-14, 2.0**-24, 1000 * 2.0**-24, -65504.0, -0.0],
                dtype="<f2").reshape(2, 4)
# bfloat16 = top 16 bits of float32; these values are exact in bfloat16.
bf16_src = np.array([1.0, -3.140625, 2.0**100, 2.0**-130], dtype="<f4")
bf16 = (bf16_src.view("<u4") >> 16).astype("<u2")
w = np.array([[0.5, -1.25], [3e-3, 1e30]], dtype="<f4")
step = np.array(42.0, dtype="<f4")
empty = np.zeros((0, 3), dtype="<f4")

# (name, dtype tag, shape, bytes); data is laid out in the reverse of this header order.
tensors = [("half", "F16", half.shape, half.tobytes()),
           ("bf16", "BF16", bf16.shape, bf16.tobytes()),
           ("w", "F32", w.shape, w.tobytes()),
           ("step", "F32", step.shape, step.tobytes()),
           ("empty", "F32", empty.shape, empty.tobytes())]
offsets, data, pos = {}, b"", 0
for name, _, _, raw in reversed(tensors):
    offsets[name] = [pos, pos + len(raw)]
    data += raw
    pos += len(raw)

header = {"__metadata__": {"format": "pt", "note": "caption test fixture"}}
for name, dtype, shape, _ in tensors:
    header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": offsets[name]}
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)

out = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "golden",
                                   "mixed_dtypes.safetensors"))
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + data)
print(out, 8 + len(text) + len(data), "bytes")
