"""Training through the drop-in classes against a real optimizer: data parallel without DDP,
train/eval swaps, state_dict round trips, shared memory."""

import torch
import torch.multiprocessing as mp

import models
import roadless.torch as rt

STEPS = 15


def test_twoReplicaProcesses_halfBatches_equalOneProcessOnWholeBatch(optimizer, run_id):
    ctx = mp.get_context("spawn")
    out = ctx.Manager().dict()
    procs = [ctx.Process(target=models.replica,
                         args=(r, 2, optimizer.target, run_id + "-dp", STEPS, out))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
        assert p.exitcode == 0
    model = models.mlp()
    opt = rt.AdamWScheduleFree(model.named_parameters(), lr=0.01, warmup_steps=3,
                               target=optimizer.target, run_id=run_id + "-one", replicas=1, replica=0)
    models.train(model, opt, models.batches(STEPS))
    with opt.at_x():
        whole = models.flat(model)
    # Both replicas hold the same x, and the mean of the half-batch gradients is the
    # whole-batch gradient up to float32 rounding.
    assert torch.equal(out[0], out[1])
    torch.testing.assert_close(out[0], whole, rtol=1e-5, atol=1e-5)
    assert not torch.equal(whole, models.flat(models.mlp()))


def test_trainEvalSwaps_everyStep_leaveTrainingUnchanged(optimizer, run_id):
    runs = []
    for swap in (0, 1):
        model = models.mlp()
        opt = rt.SGDScheduleFree(model.named_parameters(), lr=0.5, target=optimizer.target,
                                 run_id="%s-%d" % (run_id, swap), replica=0, replicas=1)
        models.train(model, opt, models.batches(STEPS), swap_every=swap)
        runs.append(models.flat(model))
        with opt.at_x():
            runs.append(models.flat(model))
    assert torch.equal(runs[0], runs[2])  # y
    assert torch.equal(runs[1], runs[3])  # x
    assert not torch.equal(runs[0], runs[1])


def test_atX_insideBlock_holdsXAndRestoresY(optimizer, run_id):
    model = models.mlp()
    opt = rt.AdamWScheduleFree(model.named_parameters(), lr=0.01, target=optimizer.target,
                               run_id=run_id, replica=0, replicas=1)
    models.train(model, opt, models.batches(5))
    y = models.flat(model)
    with opt.at_x():
        x = models.flat(model)
        _, served = opt.client.get_parameters(run_id, 2)
        assert torch.equal(x, torch.cat([torch.from_numpy(served[n]) for n, _ in model.named_parameters()]))
    assert torch.equal(models.flat(model), y)
    assert not torch.equal(x, y)


def test_stateDict_loadIntoFreshOptimizer_continuesBitIdentically(optimizer, run_id):
    data = models.batches(12)
    straight = models.mlp()
    opt = rt.AdamWScheduleFree(straight.named_parameters(), lr=0.01, target=optimizer.target,
                               run_id=run_id + "-a", replica=0, replicas=1)
    models.train(straight, opt, data[:6])
    saved = opt.state_dict()
    models.train(straight, opt, data)

    resumed = models.mlp(seed=7)  # other initial values: the state must replace them
    opt2 = rt.AdamWScheduleFree(resumed.named_parameters(), lr=0.01, target=optimizer.target,
                                run_id=run_id + "-b", replica=0, replicas=1)
    opt2.load_state_dict(saved)
    assert opt2.step_count == 6
    models.train(resumed, opt2, data)
    assert torch.equal(models.flat(resumed), models.flat(straight))


def test_paramGroups_mapToServerGroups_withTheirOwnHyperparameters(optimizer, run_id):
    model = models.mlp()
    decay = [(n, p) for n, p in model.named_parameters() if n.endswith("weight")]
    other = [(n, p) for n, p in model.named_parameters() if not n.endswith("weight")]
    opt = rt.AdamWScheduleFree(
        [{"params": decay, "weight_decay": 0.1, "name": "decay"}, {"params": other}],
        lr=0.01, target=optimizer.target, run_id=run_id, replica=0, replicas=1)
    spec = opt.status().spec
    assert [g.name for g in spec.parameter_groups] == ["decay", "group1"]
    assert list(spec.parameter_groups[0].tensor_names) == ["0.weight", "2.weight"]
    assert spec.parameter_groups[0].hyperparameters.weight_decay == 0.1
    assert spec.parameter_groups[1].hyperparameters.weight_decay == 0.0
    opt.param_groups[1]["lr"] = 0.005  # as an lr scheduler would
    models.train(model, opt, models.batches(2))
    assert opt.status().groups[1].lr == 0.005


def test_positionalParams_getStablePositionalNames(optimizer, run_id):
    model = models.mlp()
    opt = rt.SGDScheduleFree(model.parameters(), target=optimizer.target, run_id=run_id,
                             replica=0, replicas=1)
    names = [t.name for t in opt.status().spec.tensors]
    assert names == ["params.0", "params.1", "params.2", "params.3"]


def test_sameHost_replica_usesSharedMemory_andMatchesChunks(optimizer, run_id):
    results = []
    for shm in (True, False):
        from roadless import ClientOptions
        model = models.mlp()
        opt = rt.AdamWScheduleFree(model.named_parameters(), lr=0.01, target=optimizer.target,
                                   run_id="%s-%d" % (run_id, shm), replica=0, replicas=1,
                                   options=ClientOptions(shared_memory=shm))
        models.train(model, opt, models.batches(8))
        assert opt.uses_shared_memory == shm
        results.append(models.flat(model))
    assert torch.equal(results[0], results[1])


def test_bfloat16Gradients_trainCloseToFloat32(optimizer, run_id):
    results = []
    for dtype in ("bfloat16", "float32"):
        model = models.mlp()
        opt = rt.SGDScheduleFree(model.named_parameters(), lr=0.5, target=optimizer.target,
                                 run_id="%s-%s" % (run_id, dtype), replica=0, replicas=1,
                                 grad_dtype=dtype)
        models.train(model, opt, models.batches(5))
        assert not opt.uses_shared_memory or dtype == "float32"
        results.append(models.flat(model))
    assert not torch.equal(results[0], results[1])
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=1e-2)
