#!/usr/bin/env python3
"""Loads Roadless eval checkpoints into PyTorch and prints eval-mode logits.

The proof that a PyTorch user can use a checkpoint: the network is built from
the same architecture text the trainers use ("fc1=Linear(784,256,bias=False)
-> bn1=BatchNorm1d(256) -> relu=ReLU -> fc2=Linear(256,10)"), as an
nn.Sequential whose child names are the module names, so its state_dict keys
are exactly the checkpoint's tensor names. Each checkpoint is loaded with
load_state_dict(strict=True): a missing, extra or misshapen tensor fails.

The safetensors files are read with a small reader written here against the
format (8-byte little-endian header length, JSON header, raw little-endian
data with no holes), because the `safetensors` package is not installed; only
torch and numpy are needed.

Usage:
  load_checkpoint.py --architecture TEXT --input-shape 784 \
      --inputs inputs.safetensors --checkpoint a.safetensors [--checkpoint b ...]

`inputs.safetensors` holds one F32 tensor "inputs" of shape [N, *input_shape].
Prints one JSON object: {"torch": version, "results": [{"checkpoint": path,
"shape": [N, classes], "logits": [...row-major float32 values...]}]}, every
value written as repr(float(np.float32)) so Java recovers the exact float32.
"""

import argparse
import ast
import collections
import json
import re
import struct
import sys

import numpy as np
import torch
from torch import nn

DTYPES = {"F32": np.dtype("<f4"), "I64": np.dtype("<i8")}


def read_safetensors(path):
    """Returns {name: numpy array} after checking the file's structure."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: too short")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise ValueError(f"{path}: header length {n} exceeds the file")
    header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    data = memoryview(blob)[8 + n :]
    header.pop("__metadata__", None)
    entries = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    expected = 0
    tensors = {}
    for name, meta in entries:
        begin, end = meta["data_offsets"]
        if begin != expected:
            raise ValueError(f"{path}: hole or overlap before {name}")
        dtype = DTYPES[meta["dtype"]]
        shape = tuple(meta["shape"])
        count = int(np.prod(shape)) if shape else 1
        if end - begin != count * dtype.itemsize:
            raise ValueError(f"{path}: {name} has the wrong byte length")
        tensors[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape).copy()
        expected = end
    if expected != len(data):
        raise ValueError(f"{path}: {len(data) - expected} bytes after the last tensor")
    return tensors


MODULE = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)\s*=\s*)?([A-Za-z0-9_]+)\s*(?:\((.*)\))?\s*$")


def build(architecture):
    """nn.Sequential from the trainers' architecture text."""
    modules = collections.OrderedDict()
    for part in architecture.split("->"):
        m = MODULE.match(part)
        if not m:
            raise ValueError(f"cannot parse module {part!r}")
        name, kind, args = m.group(1), m.group(2), m.group(3) or ""
        name = name or kind.lower()
        call = ast.parse(f"f({args})", mode="eval").body
        positional = [ast.literal_eval(a) for a in call.args]
        keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        factory = {
            "Linear": nn.Linear,
            "Conv2d": nn.Conv2d,
            "BatchNorm1d": nn.BatchNorm1d,
            "BatchNorm2d": nn.BatchNorm2d,
            "ReLU": nn.ReLU,
            "relu": nn.ReLU,
            "AdaptiveAvgPool2d": nn.AdaptiveAvgPool2d,
            "Flatten": nn.Flatten,
            "flatten": nn.Flatten,
        }[kind]
        modules[name] = factory(*positional, **keywords)
    return nn.Sequential(modules)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--architecture", required=True)
    p.add_argument("--input-shape", required=True, help="comma-separated, without the batch")
    p.add_argument("--inputs", required=True)
    p.add_argument("--checkpoint", action="append", required=True)
    a = p.parse_args()

    torch.set_num_threads(1)
    shape = [int(d) for d in a.input_shape.split(",")]
    inputs = read_safetensors(a.inputs)["inputs"]
    x = torch.from_numpy(inputs).reshape([inputs.shape[0]] + shape)
    results = []
    for path in a.checkpoint:
        model = build(a.architecture)
        state = {k: torch.from_numpy(v) for k, v in read_safetensors(path).items()}
        model.load_state_dict(state, strict=True)
        model.eval()
        with torch.no_grad():
            logits = model(x).numpy().astype(np.float32)
        results.append(
            {
                "checkpoint": path,
                "shape": list(logits.shape),
                "logits": [float(v) for v in logits.reshape(-1)],
            }
        )
    json.dump({"torch": torch.__version__, "results": results}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
