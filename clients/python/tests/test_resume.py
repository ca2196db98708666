"""kill -9 of the optimizer mid-run and a restart: the trainer resumes by itself (retries on
UNAVAILABLE, replays or rewinds to the restored step) and ends bit-identical to an
uninterrupted run."""

import threading
import time

import pytest
import torch

import models
import roadless.torch as rt
from roadless import ClientOptions
from server import OptimizerServer

STEPS, KILL_AT = 30, 12


def run(target, run_id, shared_memory, window, on_step=None):
    model = models.mlp()
    opt = rt.AdamWScheduleFree(model.named_parameters(), lr=0.01, warmup_steps=5,
                               target=target, run_id=run_id, replica=0, replicas=1, resume_window=window,
                               options=ClientOptions(shared_memory=shared_memory, retry_for=60))
    data = models.batches(STEPS)
    loss_fn = torch.nn.CrossEntropyLoss()
    opt.train()
    while opt.step_count < STEPS:
        if on_step:
            on_step(opt.step_count)
        x, y = data[opt.step_count]
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    y_final = models.flat(model)
    with opt.at_x():
        x_final = models.flat(model)
    used_shm = opt.uses_shared_memory
    opt.close()
    return y_final, x_final, used_shm


@pytest.mark.parametrize("shared_memory,window", [(False, 1), (True, 0)],
                         ids=["chunks-replay", "shm-rewind"])
def test_killMinus9MidRun_restart_trainerResumesBitIdentical(
        tmp_path, optimizer, run_id, shared_memory, window):
    expected = run(optimizer.target, run_id, shared_memory, window)

    server = OptimizerServer(tmp_path, snapshot_every_steps=1).start()
    killed = []

    def kill_and_restart(step):
        if step == KILL_AT and not killed:
            server.kill9()
            killed.append(step)
            # Back after a while: meanwhile the trainer's push meets UNAVAILABLE and retries.
            threading.Timer(1.0, server.start).start()

    try:
        got = run(server.target, run_id, shared_memory, window, kill_and_restart)
    finally:
        time.sleep(0.1)
        server.stop()
    assert killed
    assert got[2] == shared_memory
    assert torch.equal(got[0], expected[0])  # y
    assert torch.equal(got[1], expected[1])  # x
