"""Bench: one replica's training step at 10M parameters (AdamW-SF, SYNC, one replica), Python
(roadless.torch) against the Java client (the optimizer jar's LoadTest, ReplicaSession) on the
same transport and server, and an in-process torch.optim.AdamW step (foreach) for scale.

    python3 clients/python/bench.py [--params=10000000] [--steps=40]

Starts its own optimizer processes (optimizer-service/target/optimizer-service-all.jar): one
with shared memory, one without (every replica sends chunks over loopback TCP). Prints the
median and p90 of the step round trip; figures go to docs/BENCHMARKS.md.
"""

import argparse
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "tests"))
from server import OptimizerServer, jar  # noqa: E402

import roadless.torch as rt  # noqa: E402
from roadless import ClientOptions  # noqa: E402


def summary(ms):
    ms = sorted(ms)
    return statistics.median(ms), ms[int(len(ms) * 0.9)]


def python_replica(target, params, steps, shm, window, run_id):
    weight = torch.nn.Parameter(torch.zeros(params))
    opt = rt.AdamWScheduleFree([("weight", weight)], target=target, run_id=run_id, replica=0,
                               replicas=1, resume_window=window,
                               options=ClientOptions(shared_memory=shm))
    assert opt.uses_shared_memory is False  # attaches on the first step
    weight.grad = torch.randn(params, generator=torch.Generator().manual_seed(0)) * 1e-3
    opt.train()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        opt.step()
        times.append((time.perf_counter() - t) * 1e3)
    assert opt.uses_shared_memory == shm
    opt.close()
    return summary(times[10:])


def java_replica(target, params, steps, run_id):
    out = subprocess.run(
        ["java", "--add-modules=jdk.incubator.vector", "-cp", str(jar()),
         "dev.roadless.optimizer.bench.LoadTest", "--optimizer-target=" + target,
         "--loadtest-replicas=1", "--loadtest-params=%d" % params,
         "--loadtest-steps=%d" % steps, "--loadtest-run=" + run_id],
        capture_output=True, text=True, check=True).stdout
    m = re.search(r"p50 ([\d.]+) ms, p90 ([\d.]+) ms", out)
    return float(m.group(1)), float(m.group(2))


def torch_adamw(params, steps):
    torch.set_num_threads(1)
    weight = torch.nn.Parameter(torch.zeros(params))
    weight.grad = torch.randn(params) * 1e-3
    opt = torch.optim.AdamW([weight], lr=1e-3, foreach=True)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        opt.step()
        times.append((time.perf_counter() - t) * 1e3)
    torch.set_num_threads(torch.get_num_threads())
    return summary(times[3:])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--params", type=int, default=10_000_000)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--rounds", type=int, default=3,
                   help="Java and Python take turns this many times per transport, so that "
                        "load from elsewhere falls on both alike")
    a = p.parse_args()
    rows = []
    for transport, shm in (("shared memory", True), ("loopback TCP", False)):
        with tempfile.TemporaryDirectory() as work:
            server = OptimizerServer(work, shared_memory=shm, jvm=(), threads=0).start()
            java, python = [], []
            try:
                for i in range(a.rounds):
                    java.append(java_replica(server.target, a.params, a.steps, "bench-java-%d" % i))
                    python.append(python_replica(server.target, a.params, a.steps, shm, 1,
                                                 "bench-py-%d" % i))
            finally:
                server.stop()
        j = statistics.median(p50 for p50, _ in java)
        py = statistics.median(p50 for p50, _ in python)
        rows.append((transport, java, python, j, py))
    adamw = torch_adamw(a.params, a.steps)
    print("%d parameters, %d steps x %d rounds, AdamW-SF, one SYNC replica: step round trip, "
          "p50 ms per round" % (a.params, a.steps, a.rounds))
    print("| transport | Java ReplicaSession p50 per round | Python roadless.torch p50 per round "
          "| median Java | median Python | Python / Java |")
    print("|---|---|---|---|---|---|")
    for transport, java, python, j, py in rows:
        print("| %s | %s | %s | %.1f | %.1f | %.2f |" % (
            transport, ", ".join("%.1f" % x for x, _ in java),
            ", ".join("%.1f" % x for x, _ in python), j, py, py / j))
    print("torch.optim.AdamW(foreach=True) in process, 1 thread: p50 %.1f ms, p90 %.1f ms" % adamw)


if __name__ == "__main__":
    main()
