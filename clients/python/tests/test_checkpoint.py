"""The checkpoint service saves an eval checkpoint of two Python trainers (each serving the
roadless.trainer.v1 control API) exactly as it does for Java ones, and PyTorch loads it
strictly and reproduces the trainers' hold-out accuracy."""

import collections
import os
import pathlib
import subprocess
import threading
import time

import grpc
import pytest
import torch
from safetensors.torch import load_file

import roadless.torch as rt
from roadless.checkpoint.v1 import checkpoint_service_pb2 as cpb
from roadless.checkpoint.v1 import checkpoint_service_pb2_grpc as cpb_grpc
from roadless.torch.trainer import TrainerControl, serve
from server import REPO

STEPS, SHARE = 60, 16
JAR = pathlib.Path(os.environ.get(
    "ROADLESS_CHECKPOINT_JAR", REPO / "checkpoint-service/target/checkpoint-service-all.jar"))


def data(n, seed):
    g = torch.Generator().manual_seed(seed)
    protos = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(99))
    labels = torch.randint(0, 4, (n,), generator=g)
    return 1.5 * protos[labels] + torch.randn(n, 1, 8, 8, generator=g), labels


TRAIN, HOLDOUT = data(1024, 1), data(256, 2)


def batch(data_seed, step, replica, replicas, size):
    """This replica's slice of global batch ``step``: a pure function of its arguments."""
    order = torch.randperm(len(TRAIN[0]), generator=torch.Generator().manual_seed(
        data_seed * 1_000_003 + step))
    mine = order[: size * replicas].chunk(replicas)[replica]
    return TRAIN[0][mine]


def labels_of(data_seed, step, replica, replicas, size):
    order = torch.randperm(len(TRAIN[0]), generator=torch.Generator().manual_seed(
        data_seed * 1_000_003 + step))
    return TRAIN[1][order[: size * replicas].chunk(replicas)[replica]]


def cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(collections.OrderedDict(
        conv=torch.nn.Conv2d(1, 4, 3, padding=1, bias=False), bn=torch.nn.BatchNorm2d(4),
        relu=torch.nn.ReLU(), pool=torch.nn.AdaptiveAvgPool2d(1), flatten=torch.nn.Flatten(),
        fc=torch.nn.Linear(4, 4)))


def trainer(model, replica, where, run_id, ready, out):
    opt = rt.AdamWScheduleFree(model.named_parameters(), lr=0.05, warmup_steps=5,
                               run_id=run_id, replica=replica, replicas=2, **where)
    server, port = serve(TrainerControl(model, opt, batch, HOLDOUT, SHARE), plaintext=True)
    opt.train()
    model.train()
    while opt.step_count < STEPS:
        k = opt.step_count
        opt.zero_grad()
        torch.nn.functional.cross_entropy(
            model(batch(7, k, replica, 2, SHARE)), labels_of(7, k, replica, 2, SHARE)).backward()
        opt.step()
    out[replica] = (server, port, opt)
    ready.release()


SAVED = {}  # x as each variant's checkpoint holds it


@pytest.mark.skipif(not JAR.is_file() and not os.environ.get("CI"), reason="no checkpoint jar")
@pytest.mark.parametrize("sharded", [False, True], ids=["one-server", "two-shards"])
def test_saveCheckpoint_twoPythonTrainers_pyTorchLoadsStrictlyAndReproducesAccuracy(
        request, optimizer, run_id, tmp_path, sharded):
    """Sharded: the trainers' optimizers spread the run over two shards (roadless.shard's plan);
    the Java checkpoint service gathers x from those shards by the same plan, the Python
    trainers read x whole from them, and the checkpoint holds what one server's does."""
    if sharded:
        targets = [s.target for s in request.getfixturevalue("shards")[:2]]
        where, optimizer_args = {"targets": targets}, [
            "--optimizer-target=" + targets[0], "--optimizer-shard-targets=" + ",".join(targets)]
    else:
        where, optimizer_args = {"target": optimizer.target}, [
            "--optimizer-target=" + optimizer.target]
    ready, out = threading.Semaphore(0), {}
    # The models are made here: cnn() seeds torch's global generator, which threads share.
    threads = [threading.Thread(target=trainer, args=(cnn(), r, where, run_id, ready, out))
               for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert set(out) == {0, 1}
    port_file = tmp_path / "checkpoint-port"
    proc = subprocess.Popen(
        ["java", "-XX:TieredStopAtLevel=1", "-jar", str(JAR), "--port=0",
         "--port-file=%s" % port_file, "--metrics-port=-1", "--plaintext=true",
         "--checkpoint-dir=%s" % (tmp_path / "checkpoints")] + optimizer_args + [
         "--trainer-targets=127.0.0.1:%d,127.0.0.1:%d" % (out[0][1], out[1][1])],
        stdout=open(tmp_path / "checkpoint.log", "wb"), stderr=subprocess.STDOUT)
    try:
        give_up = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None and time.monotonic() < give_up, \
                (tmp_path / "checkpoint.log").read_text()
            time.sleep(0.05)
        channel = grpc.insecure_channel("127.0.0.1:" + port_file.read_text().strip())
        # The service answers SERVER_NOT_READY until the optimizer and both trainers report
        # SERVING; a client waits for its readiness like any other.
        while True:
            try:
                cpb_grpc.CheckpointServiceStub(channel).ListCheckpoints(
                    cpb.ListCheckpointsRequest(run_id=run_id), timeout=10)
                break
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAVAILABLE and time.monotonic() < give_up, \
                    (e, (tmp_path / "checkpoint.log").read_text())
                time.sleep(0.1)
        saved = cpb_grpc.CheckpointServiceStub(channel).SaveCheckpoint(
            cpb.SaveCheckpointRequest(
                run_id=run_id, name="eval-x",
                batch_norm=cpb.BatchNormSettings(mode=cpb.BATCH_NORM_MODE_EMA, batches=20,
                                                 data_seed=3)),
            timeout=120).checkpoint
        channel.close()
    finally:
        proc.terminate()
        proc.wait(30)
        for server, _, opt in out.values():
            server.stop(None)
            opt.close()
    assert saved.step == STEPS
    metrics = saved.recomputed_metrics
    assert metrics.examples == len(HOLDOUT[0])

    model = cnn()
    tensors = load_file(str(tmp_path / "checkpoints" / "eval-x" / "model.safetensors"))
    model.load_state_dict(tensors, strict=True)
    SAVED[sharded] = tensors
    if len(SAVED) == 2:  # the sharded run's checkpoint is the one server's, bit for bit
        assert SAVED[True].keys() == SAVED[False].keys()
        for name in SAVED[False]:
            assert torch.equal(SAVED[True][name], SAVED[False][name]), name
    model.eval()
    with torch.no_grad():
        logits = model(HOLDOUT[0])
    correct = int((logits.argmax(1) == HOLDOUT[1]).sum())
    loss = torch.nn.functional.cross_entropy(logits, HOLDOUT[1]).item()
    assert correct == round(metrics.accuracy * metrics.examples)
    assert loss == pytest.approx(metrics.loss, rel=1e-5)
    assert metrics.accuracy > 0.5  # it learned something: chance is 0.25
