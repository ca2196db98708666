"""Each refusal surfaces as its typed exception with the right ErrorInfo reason."""

import threading
import time

import numpy as np
import pytest
import torch

import models
import roadless.torch as rt
from roadless import ClientOptions, OptimizerClient, errors
from roadless.optimizer.v1 import optimizer_service_pb2, run_pb2


def sgd(optimizer, run_id, **kw):
    model = models.mlp()
    args = dict(target=optimizer.target, run_id=run_id, replica=0, replicas=1)
    args.update(kw)
    return model, rt.SGDScheduleFree(model.named_parameters(), **args)


def test_getRunStatus_unknownRun_raisesRunNotFound(optimizer):
    with OptimizerClient(optimizer.target) as client:
        with pytest.raises(errors.RunNotFound) as e:
            client.run_status("no-such-run")
    assert e.value.reason == "RUN_NOT_FOUND" and e.value.domain == "roadless.dev"
    assert e.value.code.name == "NOT_FOUND"


def test_create_badRunId_raisesInvalidRunId(optimizer):
    with pytest.raises(errors.InvalidRunId):
        sgd(optimizer, "Not A Run Id")


def test_create_sameRunOtherHyperparameters_raisesRunSpecConflict(optimizer, run_id):
    sgd(optimizer, run_id, lr=0.5)
    with pytest.raises(errors.RunSpecConflict) as e:
        sgd(optimizer, run_id, lr=0.25)
    assert e.value.reason == "RUN_SPEC_CONFLICT"


def test_create_negativeLr_raisesInvalidHyperparameter(optimizer, run_id):
    with pytest.raises(errors.InvalidHyperparameter):
        sgd(optimizer, run_id, lr=-1.0)


def test_step_nanGradient_raisesNonFiniteGradientAndChangesNothing(optimizer, run_id):
    model, opt = sgd(optimizer, run_id)
    opt.train()
    before = models.flat(model)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    next(model.parameters()).grad[0, 0] = float("nan")
    with pytest.raises(errors.NonFiniteGradient) as e:
        opt.step()
    assert e.value.reason == "NON_FINITE_GRADIENT" and e.value.metadata
    assert opt.step_count == 0 and opt.status().step == 0
    assert torch.equal(models.flat(model), before)
    assert opt.status().refused_pushes["NON_FINITE_GRADIENT"] >= 1
    models.train(model, opt, models.batches(1))  # a finite gradient goes through after it
    assert opt.step_count == 1


def test_step_replicaOutOfRange_raisesReplicaOutOfRange(optimizer, run_id):
    sgd(optimizer, run_id, replica=0, replicas=2)
    model, opt = sgd(optimizer, run_id, replica=2, replicas=2)
    with pytest.raises(errors.ReplicaOutOfRange):
        models.train(model, opt, models.batches(1))


def test_push_stepAhead_raisesStepInFuture(optimizer, run_id):
    _, opt = sgd(optimizer, run_id)
    grads = [np.zeros(p.numel(), np.float32) for p in opt._params]
    with pytest.raises(errors.StepInFuture):
        opt.client.push_gradients(run_id, 0, 5, opt._names, grads)


def test_update_wrongExpectedStep_raisesStepMismatch(optimizer, run_id):
    model, opt = sgd(optimizer, run_id)
    models.train(model, opt, models.batches(2))
    with pytest.raises(errors.StepMismatch):
        opt.client.update_hyperparameters(run_id, "group0", run_pb2.Hyperparameters(lr=0.1), 7)


def test_update_unknownGroup_raisesGroupNotFound(optimizer, run_id):
    _, opt = sgd(optimizer, run_id)
    with pytest.raises(errors.GroupNotFound):
        opt.client.update_hyperparameters(run_id, "nope", run_pb2.Hyperparameters(lr=0.1))


def test_upload_otherInitialValues_raisesInitialValuesConflict(optimizer, run_id):
    _, opt = sgd(optimizer, run_id)
    other = [np.ones(p.numel(), np.float32) for p in opt._params]
    with pytest.raises(errors.InitialValuesConflict):
        opt.client.upload_initial_values(run_id, opt._names, other)


def test_call_noServer_raisesUnavailableAfterRetrying():
    options = ClientOptions(retry_for=0.5, deadline=1.0)
    with OptimizerClient("127.0.0.1:1", options=options) as client:
        with pytest.raises(errors.Unavailable) as e:
            client.list_runs()
    assert e.value.retryable


def test_step_otherReplicaNeverPushes_raisesDeadlineExceeded(optimizer, run_id):
    model, opt = sgd(optimizer, run_id, replica=0, replicas=2,
                     options=ClientOptions(wait_deadline=1.0))
    with pytest.raises(errors.DeadlineExceeded):
        models.train(model, opt, models.batches(1))


def test_step_overflowingState_raisesRunFailedAndOtherRunsTrainOn(optimizer, run_id):
    model, opt = sgd(optimizer, run_id, lr=1.0, warmup_steps=0)
    neighbour_model, neighbour = sgd(optimizer, run_id + "-n")
    opt.train()
    for _ in range(2):
        for p in model.parameters():
            p.grad = torch.full_like(p, 3e38)
        try:
            opt.step()
        except errors.RunFailed as e:
            failure = e
            break
    else:
        pytest.fail("two steps of 3e38 with lr 1 must overflow float32")
    assert failure.reason == "RUN_FAILED" and failure.code.name == "FAILED_PRECONDITION"
    status = opt.status()
    assert status.state == optimizer_service_pb2.RUN_STATE_FAILED
    assert status.failure.tensor and status.failure.step == 1
    models.train(neighbour_model, neighbour, models.batches(2))
    assert neighbour.status().step == 2


def test_push_stepBelowZero_raisesStepOutOfRange(optimizer, run_id):
    _, opt = sgd(optimizer, run_id)
    grads = [np.zeros(p.numel(), np.float32) for p in opt._params]
    with pytest.raises(errors.StepOutOfRange):
        opt.client.push_gradients(run_id, 0, -1, opt._names, grads)


def _grads(model, seed, nan_last=False):
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=g)
    if nan_last:
        list(model.parameters())[-1].grad.view(-1)[-1] = float("nan")


def _pair(optimizer, run_id, options):
    ms = [models.mlp(), models.mlp()]
    opts = [rt.SGDScheduleFree(m.named_parameters(), target=optimizer.target, run_id=run_id,
                               replica=r, replicas=2, options=options) for r, m in enumerate(ms)]
    for o in opts:
        o.train()
    return ms, opts


def _step_both(ms, opts, seeds):
    _grads(ms[0], seeds[0])
    first = threading.Thread(target=opts[0].step)
    first.start()
    _grads(ms[1], seeds[1])
    opts[1].step()
    first.join(60)
    assert not first.is_alive()


def test_step_peerRefusedAfterOurPushWasSummed_pushesTheSameGradientAgainByItself(
        optimizer, run_id):
    """SYNC with two replicas: replica 0's push is summed into the step's one gradient set; replica
    1's push with a NaN in its last tensor touched that set before it was refused, so the step is
    voided and replica 0 answered PUSH_VOIDED, which its optimizer handles by pushing the same
    gradient again: the run ends exactly where a run that never saw the NaN ends."""
    options = ClientOptions(shared_memory=False)  # chunks over TCP, summed as they arrive
    ms, opts = _pair(optimizer, run_id, options)
    _grads(ms[0], 1)
    first = threading.Thread(target=opts[0].step)
    first.start()
    give_up = time.monotonic() + 60
    while 0 not in opts[1].status().pending_replicas:
        assert time.monotonic() < give_up, "replica 0's push never arrived"
        time.sleep(0.01)
    _grads(ms[1], 2, nan_last=True)
    with pytest.raises(errors.NonFiniteGradient):
        opts[1].step()
    _grads(ms[1], 2)
    opts[1].step()
    first.join(60)
    assert not first.is_alive()
    _step_both(ms, opts, (3, 4))
    assert opts[0].status().refused_pushes["PUSH_VOIDED"] == 1

    ref_ms, ref_opts = _pair(optimizer, run_id + "-ref", options)
    _step_both(ref_ms, ref_opts, (1, 2))
    _step_both(ref_ms, ref_opts, (3, 4))
    for r in range(2):
        assert opts[r].step_count == 2
        assert torch.equal(models.flat(ms[r]), models.flat(ref_ms[r])), "replica %d" % r
    for o in opts + ref_opts:
        o.close()
