"""The serving bench's peer: a PyTorch RPC parameter server stepping torch.optim.AdamW.

ServingBench (optimizer-service's test tree) starts one server process and R replica processes of
this script on loopback, each its own interpreter:

    python3 torch_rpc_peer.py server  --port=P --replicas=R --params=N --warmup=W --steps=S
    python3 torch_rpc_peer.py replica --port=P --replicas=R --params=N --warmup=W --steps=S \
        --rank=K

The server holds N float32 parameters in 10 tensors (as the Roadless run does) and a
torch.optim.AdamW over them. Every replica step is one torch.distributed.rpc call (TensorPipe)
carrying the replica's gradients; the server waits until all R replicas have pushed (SYNC),
averages the gradients, steps once and answers every replica with the new parameters.

TensorPipe is held to its TCP transport ("uv") and its "basic" channel: what a replica on another
host gets, as Roadless's tcp transport. (On one host TensorPipe would otherwise pick shared
memory.)

Each process prints one line starting with "RESULT ": the replicas their round trip (median, p90,
min over the timed steps, after the warm-up) and steps/s; the server its CPU time and minor page
faults per timed step and its resident memory (VmRSS) growth per parameter.
"""

import argparse
import resource
import statistics
import threading
import time

import torch
import torch.distributed.rpc as rpc
from torch.futures import Future

TENSORS = 10
THREADS = 2  # like the Roadless server's --threads=2 on this 2-core machine


def rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def minor_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


class ParameterServer:
    """The parameters, their AdamW, and the SYNC barrier over the replicas' pushes."""

    def __init__(self, params, replicas, warmup, steps):
        self.rss_before = rss_bytes()
        size = params // TENSORS
        generator = torch.Generator().manual_seed(0)
        self.params = [
            torch.randn(size, generator=generator).mul_(1e-3).requires_grad_()
            for _ in range(TENSORS)
        ]
        self.optimizer = torch.optim.AdamW(self.params, lr=1e-3, weight_decay=0.0)
        self.replicas = replicas
        self.warmup = warmup
        self.steps = steps
        self.lock = threading.Lock()
        self.pushed = 0
        self.step_count = 0
        self.answer = Future()
        self.window_start = None
        self.done = threading.Event()
        self.rss_loaded = rss_bytes()

    def values(self):
        return [p.detach() for p in self.params]

    def push(self, grads):
        """One replica's gradients; the returned future completes with the stepped parameters."""
        with self.lock:
            answer = self.answer
            with torch.no_grad():
                for p, g in zip(self.params, grads):
                    if p.grad is None:
                        p.grad = g
                    else:
                        p.grad.add_(g)
            self.pushed += 1
            if self.pushed == self.replicas:
                self.step()
                self.pushed = 0
                self.answer = Future()
                answer.set_result(self.values())
        return answer

    def step(self):
        if self.step_count == self.warmup:
            self.window_start = (cpu_seconds(), minor_faults())
        with torch.no_grad():
            if self.replicas > 1:
                for p in self.params:
                    p.grad.div_(self.replicas)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step_count += 1
        if self.step_count == self.warmup + self.steps:
            self.report()

    def report(self):
        cpu0, faults0 = self.window_start
        params = sum(p.numel() for p in self.params)
        rss = rss_bytes()
        print(
            "RESULT peer server: CPU %.1f ms, %d minor page faults per step over %d steps;"
            " VmRSS %.0f MB before the parameters, %.0f MB with them, %.0f MB after the steps:"
            " %.1f bytes per parameter of growth (parameters, AdamW's two moments, gradients,"
            " buffers)"
            % (
                (cpu_seconds() - cpu0) * 1e3 / self.steps,
                (minor_faults() - faults0) // self.steps,
                self.steps,
                self.rss_before / 1e6,
                self.rss_loaded / 1e6,
                rss / 1e6,
                (rss - self.rss_before) / params,
            ),
            flush=True,
        )
        self.done.set()


SERVER = None


@rpc.functions.async_execution
def push(grads):
    return SERVER.push(grads)


def options(port):
    return rpc.TensorPipeRpcBackendOptions(
        init_method="tcp://127.0.0.1:%d" % port,
        num_worker_threads=8,
        rpc_timeout=600,
        _transports=["uv"],
        _channels=["basic"],
    )


def server(args):
    global SERVER
    SERVER = ParameterServer(args.params, args.replicas, args.warmup, args.steps)
    rpc.init_rpc(
        "server",
        rank=0,
        world_size=args.replicas + 1,
        rpc_backend_options=options(args.port),
    )
    rpc.shutdown()  # waits for every replica to finish


def replica(args):
    rpc.init_rpc(
        "replica%d" % args.rank,
        rank=args.rank + 1,
        world_size=args.replicas + 1,
        rpc_backend_options=options(args.port),
    )
    generator = torch.Generator().manual_seed(args.rank + 1)
    size = args.params // TENSORS
    grads = [torch.randn(size, generator=generator).mul_(1e-3) for _ in range(TENSORS)]
    times = []
    start = None
    for i in range(args.warmup + args.steps):
        if i == args.warmup:
            start = time.perf_counter()
        t0 = time.perf_counter()
        values = rpc.rpc_sync("server", push, args=(grads,))
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - start
    assert len(values) == TENSORS and values[0].numel() == size
    times.sort()
    print(
        "RESULT peer replica %d: median %.1f ms, p90 %.1f ms, min %.1f ms per step,"
        " %.2f steps/s over %d steps"
        % (
            args.rank,
            statistics.median(times) * 1e3,
            times[len(times) * 9 // 10] * 1e3,
            times[0] * 1e3,
            args.steps / seconds,
            args.steps,
        ),
        flush=True,
    )
    rpc.shutdown()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=["server", "replica"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--params", type=int, default=10_000_000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rank", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    if args.role == "server":
        server(args)
    else:
        replica(args)


if __name__ == "__main__":
    main()
