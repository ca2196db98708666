"""state_dict() / load_state_dict() with several replicas of a SYNC run (issue 14): two replica
processes save the run's state mid-run and load it into fresh optimizers of a new run; they
continue bit-identically to two replicas that were never interrupted."""

import torch
import torch.multiprocessing as mp

import models

STEPS, CUT = 12, 5


def test_twoReplicaProcesses_stateDictRoundTrip_resumeBitIdenticalToUninterrupted(
        optimizer, run_id):
    ctx = mp.get_context("spawn")
    out = ctx.Manager().dict()
    procs = [ctx.Process(target=models.replica_resume,
                         args=(r, 2, optimizer.target, run_id, STEPS, CUT, out))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
        assert p.exitcode == 0
    for r in range(2):
        got = out[r]
        assert got["resumed_at"] == CUT
        assert torch.equal(got["y_resumed"], got["y_straight"]), "replica %d: y" % r
        assert torch.equal(got["x_resumed"], got["x_straight"]), "replica %d: x" % r
    # Every replica exported the same state, and both hold the same x.
    assert out[0]["export"] == out[1]["export"]
    assert torch.equal(out[0]["x_resumed"], out[1]["x_resumed"])
    # The continuation did something: x moved after the cut.
    assert not torch.equal(out[0]["x_resumed"], models.flat(models.mlp()))
