"""A PyTorch CNN with BatchNorm on the bundled MNIST digits, trained by two data-parallel
replicas (processes) through a Roadless optimizer instead of DDP, then BN warmup at x, an eval
checkpoint (safetensors), and the hold-out accuracy at x with stale and with warmed statistics.

    python3 clients/python/examples/mnist.py                      # starts its own optimizer
    python3 clients/python/examples/mnist.py --target=host:50051  # a running one

Without --target it starts optimizer-service/target/optimizer-service-all.jar on a free port
(build it with ./mvnw -B -q -pl optimizer-service -am package -DskipTests).
"""

import argparse
import collections
import gzip
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.multiprocessing as mp

import roadless.torch as rt

REPO = pathlib.Path(__file__).resolve().parents[3]
DIGITS = REPO / "trainer-service/src/main/resources/mnist"


def idx(name):
    raw = gzip.open(DIGITS / name).read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def digits(split):
    x = torch.from_numpy(idx(split + "-images-idx3-ubyte.gz").astype(np.float32) / 255.0)
    return x.unsqueeze(1), torch.from_numpy(idx(split + "-labels-idx1-ubyte.gz").astype(np.int64))


def cnn():
    torch.manual_seed(0)  # every replica starts from the same weights (replica 0 uploads them)
    return torch.nn.Sequential(collections.OrderedDict(
        conv1=torch.nn.Conv2d(1, 8, 3, padding=1, bias=False), bn1=torch.nn.BatchNorm2d(8),
        relu1=torch.nn.ReLU(), pool1=torch.nn.MaxPool2d(2),
        conv2=torch.nn.Conv2d(8, 16, 3, padding=1, bias=False), bn2=torch.nn.BatchNorm2d(16),
        relu2=torch.nn.ReLU(), pool2=torch.nn.AdaptiveAvgPool2d(1), flatten=torch.nn.Flatten(),
        fc=torch.nn.Linear(16, 10)))


def batch_indices(steps, batch, n):
    g = torch.Generator().manual_seed(1)
    return [torch.randint(0, n, (batch,), generator=g) for _ in range(steps)]


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def replica(rank, args, out):
    torch.set_num_threads(1)
    x, y = digits("train")
    model = cnn()
    opt = rt.AdamWScheduleFree(model.named_parameters(), lr=args.lr, warmup_steps=50,
                               target=args.target, run_id=args.run_id, replica=rank, replicas=2)
    loss_fn = torch.nn.CrossEntropyLoss()
    batches = batch_indices(args.steps, args.batch, len(x))
    opt.train()
    model.train()
    while opt.step_count < args.steps:
        mine = batches[opt.step_count].chunk(2)[rank]  # this replica's half of the batch
        opt.zero_grad()
        loss = loss_fn(model(x[mine]), y[mine])
        loss.backward()
        opt.step()
        if rank == 0 and opt.step_count % 50 == 0:
            print("step %4d  loss at y %.4f  (%s)" % (opt.step_count, loss.item(),
                  "shared memory" if opt.uses_shared_memory else "chunks"), flush=True)
    if rank == 0:
        hx, hy = digits("holdout")
        with opt.at_x():
            stale = accuracy(model, hx, hy)
        warmup = [(x[b], y[b]) for b in batch_indices(50, args.batch, len(x))]
        path = pathlib.Path(args.out) / "mnist-x.safetensors"
        rt.save_eval_checkpoint(model, opt, path, loader=warmup, batches=50)
        loaded = cnn()
        from safetensors.torch import load_file
        loaded.load_state_dict(load_file(str(path)), strict=True)
        out["stale"], out["warm"], out["path"] = stale, accuracy(loaded, hx, hy), str(path)
    opt.close()


def start_optimizer(workdir):
    jar = REPO / "optimizer-service/target/optimizer-service-all.jar"
    port_file = pathlib.Path(workdir) / "port"
    proc = subprocess.Popen(["java", "--add-modules=jdk.incubator.vector", "-jar", str(jar),
                             "--port=0", "--port-file=%s" % port_file, "--metrics-port=-1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (port_file.exists() and port_file.read_text().strip()):
        if proc.poll() is not None:
            sys.exit("the optimizer did not start (is %s built?)" % jar)
        time.sleep(0.1)
    return proc, "127.0.0.1:" + port_file.read_text().strip()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target")
    p.add_argument("--run-id", default="mnist-%d" % int(time.time()))
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--out", default=tempfile.mkdtemp(prefix="roadless-mnist-"))
    args = p.parse_args()
    server = None
    if not args.target:
        server, args.target = start_optimizer(args.out)
    try:
        out = mp.get_context("spawn").Manager().dict()
        mp.spawn(replica, args=(args, out), nprocs=2)
        print("hold-out accuracy at x: %.1f%% with the statistics gathered at y, %.1f%% after "
              "BN warmup at x" % (100 * out["stale"], 100 * out["warm"]))
        print("eval checkpoint: %s (load_state_dict(safetensors.torch.load_file(...), "
              "strict=True))" % out["path"])
    finally:
        if server:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
