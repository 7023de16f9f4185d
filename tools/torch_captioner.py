"""The caption model in PyTorch, from a model directory: the one PyTorch twin of the engine's
model that the decoder golden-file generator, the benchmark peers and caption cross-checks share.

  import sys; sys.path.insert(0, "<repo>/tools"); import torch_captioner as tc
  m = tc.load_model("models/flickr8k-resnet50c4", "cpu")
  pixels = torch.from_numpy(np.stack([tc.load_image(p, m.config["encoder"]) for p in paths]))
  with torch.no_grad():
      captions = [tc.caption_text(m.vocab, ids) for ids in m.greedy(m.encoder(pixels))]

- Decoder: the merge decoder of the model contract (README.md), with PyTorch's state-dict names,
  which are the names decoder.safetensors uses.
- Encoder: torchvision's resnet50 truncated to config["encoder"]["stages"] and globally average-
  pooled, with the stride moved onto the first 1x1 conv for stride_in_1x1 (Caffe/Keras "v1"
  weights), the configured BN eps, and the configured preprocessing applied to uint8 NHWC RGB
  pixels. encoder.safetensors holds torchvision's names and OIHW layouts, unfolded BN; F16
  tensors are widened to F32.
- load_image: PIL decode (no EXIF rotation, as the engine) and the configured resize (squash, or
  torchvision's Resize(256/224 * size) + CenterCrop(size)) to uint8 HWC RGB. PIL's bilinear
  filter, not the engine's OpenCV INTER_AREA: shrunk images differ by a level or two, enough to
  change some greedy captions of full-size photos (none of already 224x224 ones).
- greedy: as `caption describe` at beam 1: starts from <start>, never emits <pad> or <start>
  (<unk> unless allow_unk is false), stops at <end> or after max_len-1 words, ties to the lower id.

Works with torch 1.13 / torchvision 0.14 (Debian) and newer. Needs no `safetensors` package.
"""
import json
import os
import struct

import numpy as np
import torch
import torchvision
from PIL import Image
from torch import nn
from torchvision.transforms import functional as TF

PAD, START, END, UNK = 0, 1, 2, 3
BILINEAR = getattr(Image, "Resampling", Image).BILINEAR  # Pillow >= 9.1 has the enum


def read_safetensors(path):
    """{name: float32 torch.Tensor} of a safetensors file with F32, F16 or BF16 tensors."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, m in header.items():
        if name == "__metadata__":
            continue
        begin, end = m["data_offsets"]
        raw = data[begin:end]
        if m["dtype"] == "F32":
            a = np.frombuffer(raw, dtype="<f4")
        elif m["dtype"] == "F16":
            a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif m["dtype"] == "BF16":  # the upper half of an F32
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError("%s: tensor '%s' has dtype %s (F32, F16 or BF16 expected)" % (path, name, m["dtype"]))
        out[name] = torch.from_numpy(a.reshape(m["shape"]).copy())
    return out


class Decoder(nn.Module):
    """The merge decoder of the model contract (state-dict names as in model/decoder.h):
    a = relu(img_fc(drop(feat))); h = lstm(drop(embed(tokens))); logits = out(relu(fc(h + a)))."""

    def __init__(self, D, V, E=50, H=256, p=0.3):
        super().__init__()
        self.img_fc = nn.Linear(D, H)
        self.embed = nn.Embedding(V, E, padding_idx=0)
        self.lstm = nn.LSTM(E, H, batch_first=True)
        self.fc = nn.Linear(H, H)
        self.out = nn.Linear(H, V)
        self.drop = nn.Dropout(p)

    def forward(self, feat, tokens):
        a = torch.relu(self.img_fc(self.drop(feat)))
        h, _ = self.lstm(self.drop(self.embed(tokens)))
        return self.out(torch.relu(self.fc(h + a[:, None, :])))

    @torch.no_grad()
    def greedy(self, feat, max_len, allow_unk=True):
        """Token ids (without <start>/<end>) per row of feat [B, D], one step per word."""
        B = feat.shape[0]
        a = torch.relu(self.img_fc(feat.float()))
        tokens = torch.full((B, 1), START, dtype=torch.long, device=feat.device)
        state = None
        words = []
        alive = torch.ones(B, dtype=torch.bool, device=feat.device)
        for _ in range(max_len - 1):
            h, state = self.lstm(self.embed(tokens), state)
            logits = self.out(torch.relu(self.fc(h[:, 0] + a)))
            logits[:, :END] = -float("inf")  # <pad> and <start> are never emitted
            if not allow_unk:
                logits[:, UNK] = -float("inf")
            nxt = logits.argmax(dim=1)  # the first maximum: ties go to the lower id, as in the engine
            words.append(torch.where(alive, nxt, torch.full_like(nxt, END)))
            alive &= nxt != END
            if not bool(alive.any()):
                break
            tokens = nxt[:, None]
        ids = torch.stack(words, dim=1).cpu().tolist() if words else [[] for _ in range(B)]
        return [row[:row.index(END)] if END in row else row for row in ids]


class Encoder(nn.Module):
    """uint8 RGB pixels [N, S, S, 3] -> features [N, 1024 or 2048], as config["encoder"] says."""

    def __init__(self, cfg, weights, source="encoder weights"):
        super().__init__()
        if cfg.get("arch", "resnet50") != "resnet50":
            raise ValueError("%s: encoder.arch must be resnet50" % source)
        self.stages = cfg.get("stages", 5)
        self.caffe = cfg.get("preprocess", "torch") == "caffe"
        net = torchvision.models.resnet50(weights=None)
        missing, unexpected = net.load_state_dict(weights, strict=False)
        missing = [k for k in missing if not (k.startswith("fc.") or k.endswith("num_batches_tracked")
                                              or (self.stages == 4 and k.startswith("layer4.")))]
        if missing or unexpected:
            raise ValueError("%s: not a resnet50 (missing %s, unexpected %s)" % (source, missing[:3], unexpected[:3]))
        layers = [net.layer1, net.layer2, net.layer3, net.layer4][: self.stages - 1]
        if cfg.get("stride_in_1x1", False):
            for layer in layers:  # torchvision puts a block's stride on the 3x3 conv ("v1.5")
                block = layer[0]
                block.conv1.stride, block.conv2.stride = block.conv2.stride, (1, 1)
        eps = cfg.get("bn_eps", 1e-5)
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps = eps
        self.trunk = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, *layers)
        if self.caffe:  # RGB -> BGR, minus the BGR means, no scaling
            mean, scale = torch.tensor([103.939, 116.779, 123.68]), torch.ones(3)
        else:
            mean = torch.tensor([0.485, 0.456, 0.406]) * 255
            scale = 1 / (torch.tensor([0.229, 0.224, 0.225]) * 255)
        self.register_buffer("mean", mean.view(1, 3, 1, 1))
        self.register_buffer("scale", scale.view(1, 3, 1, 1))
        self.eval()

    def forward(self, pixels, memory_format=torch.contiguous_format):
        x = pixels.permute(0, 3, 1, 2).float()
        if self.caffe:
            x = x.flip(1)
        x = ((x - self.mean) * self.scale).contiguous(memory_format=memory_format)
        return self.trunk(x).float().mean(dim=(2, 3))


def load_image(path, cfg):
    """uint8 [S, S, 3] RGB numpy array of an image file, resized as config["encoder"] says."""
    size = cfg.get("image_size", 224)
    with Image.open(path) as im:
        im = im.convert("RGB")
        if cfg.get("resize", "center-crop") == "squash":
            im = im.resize((size, size), BILINEAR)
        else:
            im = TF.center_crop(TF.resize(im, round(size * 256 / 224)), size)
        return np.array(im, dtype=np.uint8)  # a writable copy (torch.from_numpy warns on read-only)


def read_vocab(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def caption_text(vocab, ids):
    return " ".join(vocab[i] for i in ids)


class Model:
    """A model directory: config (dict), vocab (list), encoder (Encoder or None), decoder."""

    def __init__(self, model_dir, device="cpu"):
        with open(os.path.join(model_dir, "config.json")) as f:
            self.config = json.load(f)
        dec = self.config["decoder"]
        self.max_len = dec.get("max_len", 40)
        self.vocab = read_vocab(os.path.join(model_dir, dec.get("vocab", "vocab.txt")))
        self.decoder = Decoder(dec["feature_dim"], len(self.vocab), dec.get("embed_dim", 50),
                               dec.get("hidden_dim", 256), dec.get("dropout", 0.3))
        path = os.path.join(model_dir, dec.get("weights", "decoder.safetensors"))
        self.decoder.load_state_dict(read_safetensors(path))
        self.decoder.to(device).eval()
        self.encoder = None
        if "encoder" in self.config:
            enc = self.config["encoder"]
            path = os.path.join(model_dir, enc.get("weights", "encoder.safetensors"))
            self.encoder = Encoder(enc, read_safetensors(path), path).to(device)

    def greedy(self, features, allow_unk=True):
        return self.decoder.greedy(features, self.max_len, allow_unk)


def load_model(model_dir, device="cpu"):
    return Model(model_dir, device)
