#!/usr/bin/env python3
"""PyTorch side of the trainer-service forward+backward benchmark.

Run by dev.roadless.trainer.bench.TrainerBench as a worker process, so that
both frameworks are measured in the same run, interleaved round by round.
It builds the same models as ModelSpec.mlp / ModelSpec.cnn (no bias in front
of BatchNorm), loads the same MNIST batch from the bundled IDX files, and
answers commands on stdin, one JSON line each on stdout:

    info                         -> {"torch": ..., "threads": ..., "capability": ...}
    time <model> <warmup> <n>    -> {"model": ..., "ms": [n per-iteration times]}

<model> is "mlp" or "cnn". One iteration is what Model.computeGradient does:
zero_grad, forward in train mode, cross_entropy (mean), backward.

Usage: bench_pytorch.py --images PATH --labels PATH --batch 64 --mlp-hidden 256
       --cnn-widths 16,32 --threads 2
"""
import argparse
import gzip
import json
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn


def read_idx(path, count):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    dims = [n] + [struct.unpack(">I", data[8 + 4 * i:12 + 4 * i])[0] for i in range((magic & 0xFF) - 1)]
    offset = 4 + 4 * len(dims)
    arr = np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)
    return arr[:count]


def models(hidden, w1, w2):
    mlp = nn.Sequential(
        nn.Linear(784, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, 10))
    cnn = nn.Sequential(
        nn.Conv2d(1, w1, 3, padding=1, bias=False), nn.BatchNorm2d(w1), nn.ReLU(),
        nn.Conv2d(w1, w2, 3, padding=1, bias=False), nn.BatchNorm2d(w2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(w2, 10))
    return {"mlp": mlp, "cnn": cnn}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--images", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--mlp-hidden", type=int, default=256)
    p.add_argument("--cnn-widths", default="16,32")
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    w1, w2 = (int(w) for w in a.cnn_widths.split(","))
    nets = models(a.mlp_hidden, w1, w2)
    x = torch.from_numpy(read_idx(a.images, a.batch).astype(np.float32) / 255.0)
    y = torch.from_numpy(read_idx(a.labels, a.batch).astype(np.int64))
    inputs = {"mlp": x.reshape(a.batch, 784), "cnn": x.reshape(a.batch, 1, 28, 28)}
    for net in nets.values():
        net.train()

    def step(name):
        net = nets[name]
        net.zero_grad(set_to_none=False)
        loss = nn.functional.cross_entropy(net(inputs[name]), y)
        loss.backward()

    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "info":
            out = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                   "capability": torch.backends.cpu.get_cpu_capability()}
        elif cmd[0] == "time":
            name, warmup, n = cmd[1], int(cmd[2]), int(cmd[3])
            for _ in range(warmup):
                step(name)
            ms = []
            for _ in range(n):
                t0 = time.perf_counter()
                step(name)
                ms.append((time.perf_counter() - t0) * 1000.0)
            out = {"model": name, "ms": ms}
        else:
            out = {"error": "unknown command " + cmd[0]}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
