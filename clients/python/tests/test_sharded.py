"""Sharded runs from Python (issue 16): the drop-in optimizers over S optimizer servers
(``targets=``), real servers on loopback. Two replica processes train 50 SYNC steps with an lr
change mid-run on one server and on S = 1, 2, 3 shards: y and x are bit-identical. kill -9 of one
shard mid-run and a restart on its snapshot directory: the replicas wait, bring it forward by
re-pushing, and end bit-identical. state_dict moves a run between S = 3 and one server."""

import logging
import threading

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

import models
import roadless.torch as rt
from roadless import ClientOptions, errors
from roadless.sharded import ShardedClient

STEPS, KILL_AT = 50, 17


@pytest.fixture(scope="module")
def trained(optimizer, shards):
    """Two replica processes, each training the same runs in the same order: on one server,
    and sharded over S = 1, 2, 3 of the shards."""
    runs = {"one": ("sharded-one", {"target": optimizer.target})}
    for s in (1, 2, 3):
        runs["S%d" % s] = ("sharded-s%d" % s, {"targets": [x.target for x in shards[:s]]})
    ctx = mp.get_context("spawn")
    out = ctx.Manager().dict()
    procs = [ctx.Process(target=models.replica_runs, args=(r, 2, runs, STEPS, out))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(240)
        assert p.exitcode == 0
    return dict(out)


@pytest.mark.parametrize("s", [1, 2, 3])
def test_twoReplicasFiftySyncSteps_sharded_bitIdenticalToOneServer(trained, shards, s):
    for r in range(2):
        one, got = trained[("one", r)], trained[("S%d" % s, r)]
        assert got["step"] == one["step"] == STEPS
        assert torch.equal(got["x"], one["x"]), "replica %d: x" % r
        assert torch.equal(got["y"], one["y"]), "replica %d: y" % r
        # The lr change reached every group of the run (the slowest shard's report).
        assert got["lr"] == one["lr"] == [pytest.approx(models.LR_CHANGE[1])]
    assert not torch.equal(trained[("one", 0)]["x"], models.flat(models.mlp()))
    # Every shard is at the run's step, and holds its part of the run: the plan's pieces.
    with ShardedClient([x.target for x in shards[:s]]) as client:
        statuses = client.statuses("sharded-s%d" % s)
        assert [st.step for st in statuses] == [STEPS] * s
        if s > 1:
            assert all(t.name.split(":")[0].isdigit() for st in statuses for t in st.spec.tensors)


def _replica_thread(model, rank, targets, run_id, out, on_step=None):
    opt = rt.AdamWScheduleFree(model.named_parameters(), lr=0.01, warmup_steps=3,
                               targets=targets, run_id=run_id, replica=rank, replicas=2,
                               resume_window=10, options=ClientOptions(retry_for=0.5))
    models.train_changing_lr(model, opt, models.batches(STEPS), part=rank, parts=2,
                             on_step=on_step)
    y = models.flat(model)
    with opt.at_x():
        out[rank] = {"y": y, "x": models.flat(model), "shm": opt.uses_shared_memory}
    opt.close()


def test_killMinus9OfOneShardMidRun_restart_replicasResumeBitIdentical(trained, shards, caplog):
    """Two replicas (threads) on S = 3; shard 1 is killed at step KILL_AT and restarted after a
    second on the same port and snapshot directory, from its snapshot of step 15 or earlier."""
    caplog.set_level(logging.INFO, logger="roadless.torch._sharding")
    targets = [x.target for x in shards]
    killed = []

    def kill_and_restart(step):
        if step == KILL_AT and not killed:
            killed.append(step)
            shards[1].kill9()
            threading.Timer(1.0, shards[1].start).start()

    out = {}
    # The models are made here: mlp() seeds torch's global generator, which threads share.
    threads = [threading.Thread(target=_replica_thread,
                                args=(models.mlp(), r, targets, "sharded-kill", out,
                                      kill_and_restart if r == 0 else None)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert killed and sorted(out) == [0, 1]
    said = [r.getMessage() for r in caplog.records]
    # Both replicas waited for the shard, then brought it forward from its snapshot's step.
    for r in range(2):
        assert any(m.startswith("replica %d: shard 1" % r) and "unavailable" in m for m in said)
        assert any(m.startswith("replica %d: shard 1" % r) and "pushing again" in m for m in said)
    for r in range(2):
        assert out[r]["shm"]
        assert torch.equal(out[r]["x"], trained[("one", r)]["x"]), "replica %d: x" % r
        assert torch.equal(out[r]["y"], trained[("one", r)]["y"]), "replica %d: y" % r


def test_stateDict_movesBetweenThreeShardsAndOneServer_continuesBitIdentical(optimizer, shards):
    data = models.batches(20)

    def opt_for(model, run_id, **where):
        return rt.AdamWScheduleFree(model.named_parameters(), lr=0.01, warmup_steps=3,
                                    run_id=run_id, **where)

    straight = models.mlp()
    opt = opt_for(straight, "state-straight", target=optimizer.target)
    models.train(straight, opt, data)
    with opt.at_x():
        x_straight = models.flat(straight)
    opt.close()

    first = models.mlp()
    opt = opt_for(first, "state-sharded", targets=[x.target for x in shards])
    models.train(first, opt, data[:8])
    saved = opt.state_dict()
    opt.close()
    assert saved["roadless"]["step"] == 8

    second = models.mlp(seed=3)  # other initial values: the state replaces them
    opt = opt_for(second, "state-one", target=optimizer.target)
    opt.load_state_dict(saved)  # S = 3 -> 1
    models.train(second, opt, data[:14])
    again = opt.state_dict()
    opt.close()

    third = models.mlp(seed=4)
    opt = opt_for(third, "state-back", targets=[x.target for x in shards[:2]])
    opt.load_state_dict(again)  # 1 -> S = 2
    models.train(third, opt, data)
    with opt.at_x():
        x_resumed = models.flat(third)
    opt.close()
    assert torch.equal(models.flat(third), models.flat(straight))
    assert torch.equal(x_resumed, x_straight)


def test_nonFiniteGradient_refusedBeforeAnyShard_runUntouched(shards):
    model = models.mlp()
    opt = rt.AdamWScheduleFree(model.named_parameters(), lr=0.01,
                               targets=",".join(x.target for x in shards[:2]),
                               run_id="sharded-nonfinite")
    assert opt.shards == 2
    opt.train()
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    before = models.flat(model)
    list(model.parameters())[2].grad[1] = float("nan")
    with pytest.raises(errors.NonFiniteGradient) as refused:
        opt.step()
    assert refused.value.metadata["tensor"] == "2.weight"
    assert torch.equal(models.flat(model), before)
    assert [st.step for st in opt.client.statuses("sharded-nonfinite")] == [1, 1]
    assert opt.status().step == 1
    opt.close()


def test_groupUnknownToTheRun_isGroupNotFound(shards):
    with ShardedClient([x.target for x in shards[:2]]) as client:
        model = models.mlp()
        opt = rt.AdamWScheduleFree(model.named_parameters(), lr=0.01, client=client,
                                   run_id="sharded-groups")
        with pytest.raises(errors.GroupNotFound):
            client.update_hyperparameters("sharded-groups", "nope", opt._hyperparameters(
                opt.param_groups[0]))
        changed = client.update_hyperparameters("sharded-groups", "group0",
                                                opt._hyperparameters(dict(
                                                    opt.param_groups[0], lr=0.5)))
        assert changed.hyperparameters.lr == 0.5
        assert np.isclose(client.run_status("sharded-groups").groups[0].hyperparameters.lr, 0.5)
        opt.close()
