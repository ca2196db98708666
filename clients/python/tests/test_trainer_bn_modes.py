"""The Python trainer's control API (roadless.trainer.v1, served on loopback) in the BatchNorm
statistics modes CUMULATIVE and PRECISE, at x of a run whose x is the golden bn_warmup_cnn case's
x: CUMULATIVE reproduces the golden momentum=None scenario (x_weights_precise_bn, real PyTorch
and upstream schedulefree) including its test logits; PRECISE pools every sample exactly (checked
against a direct computation, its mean against the golden one as the Java trainer's test does),
and two replicas' PRECISE answers merge (Chan et al.) into the answer over all their samples."""

import json

import grpc
import numpy as np
import pytest
import torch

import roadless.torch as rt
from roadless.optimizer.v1 import run_pb2
from roadless.torch.trainer import TrainerControl, serve
from roadless.trainer.v1 import trainer_service_pb2 as tpb
from roadless.trainer.v1 import trainer_service_pb2_grpc as tpb_grpc
from test_batchnorm import CASE, close, cnn, tensor

BATCHES = 50


@pytest.fixture
def golden():
    if not CASE.is_file():
        pytest.skip("no bn_warmup_cnn golden case")
    return json.loads(CASE.read_text())


def at_x(case, target, run_id):
    """A run whose x_0 (its initial values) is the golden case's x, and the model."""
    model = cnn()
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(tensor(case["params_eval_mode_x"][n]))
    model.load_state_dict({**model.state_dict(), **{
        "bn." + n: tensor(t) for n, t in case["stats_after_training"].items()}}, strict=True)
    hp = dict(case["hyperparameters"], betas=tuple(case["hyperparameters"]["betas"]))
    hp.pop("foreach")
    opt = rt.AdamWScheduleFree(model.named_parameters(), **hp, target=target, run_id=run_id,
                               replica=0, replicas=1)
    return model, opt


def warmup_batches(case, part=None):
    data = tensor(case["dataset"]["x"])
    batches = [data[b] for b in case["warmup_batches"]]
    return batches if part is None else [b.chunk(2)[part] for b in batches]


def control_stub(model, opt, batches, servers):
    """A TrainerControl on loopback whose training batch k is batches[k]."""
    control = TrainerControl(model, opt, lambda seed, k, r, rs, size: batches[k],
                             holdout=(torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.int64)),
                             batch_size=len(batches[0]))
    server, port = serve(control, plaintext=True)
    servers.append(server)
    channel = grpc.insecure_channel("127.0.0.1:%d" % port)
    return tpb_grpc.TrainerServiceStub(channel)


def compute(stub, run_id, mode):
    answer = stub.ComputeBatchNormStatistics(tpb.ComputeBatchNormStatisticsRequest(
        run_id=run_id, sequence=run_pb2.SEQUENCE_EVAL, mode=mode, batches=BATCHES), timeout=60)
    assert answer.mode == mode and answer.batches == BATCHES and answer.step == 0
    assert [l.layer for l in answer.layers] == ["bn"]
    return answer.layers[0]


@pytest.fixture
def servers():
    started = []
    yield started
    for s in started:
        s.stop(0)


def test_computeBatchNormStatistics_cumulative_matchesGoldenMomentumNone(
        golden, optimizer, run_id, servers):
    model, opt = at_x(golden, optimizer.target, run_id)
    stub = control_stub(model, opt, warmup_batches(golden), servers)
    layer = compute(stub, run_id, tpb.BATCH_NORM_STATISTICS_MODE_CUMULATIVE)
    expected = golden["scenarios"]["x_weights_precise_bn"]  # bn.momentum=None over the warmup
    mean = torch.tensor(list(layer.mean), dtype=torch.float32)
    var = torch.tensor(list(layer.m2), dtype=torch.float64) / (layer.count - 1)
    close(mean, expected["running_mean"], "CUMULATIVE running_mean")
    close(var.float(), expected["running_var"], "CUMULATIVE running_var")
    assert layer.num_batches_tracked == expected["num_batches_tracked"] == BATCHES

    # x with these statistics gives the golden test logits.
    check = cnn()
    with torch.no_grad():
        for n, p in check.named_parameters():
            p.copy_(tensor(golden["params_eval_mode_x"][n]))
        check.bn.running_mean.copy_(mean)
        check.bn.running_var.copy_(var.float())
    check.eval()
    with torch.no_grad():
        close(check(tensor(golden["test_batch"]["x"])), expected["test_logits"], "test logits")
    # The trainer's own model is untouched (the statistics are computed on a copy).
    close(model.bn.running_mean, golden["stats_after_training"]["running_mean"], "own buffers")
    opt.close()


def test_computeBatchNormStatistics_precise_poolsEverySampleExactly(
        golden, optimizer, run_id, servers):
    model, opt = at_x(golden, optimizer.target, run_id)
    batches = warmup_batches(golden)
    layer = compute(control_stub(model, opt, batches, servers), run_id,
                    tpb.BATCH_NORM_STATISTICS_MODE_PRECISE)

    # Directly: every input sample of bn at x, pooled in double.
    seen = []
    reference = cnn()
    reference.load_state_dict(model.state_dict())
    hook = reference.bn.register_forward_pre_hook(lambda m, inp: seen.append(inp[0].double()))
    reference.train()
    with torch.no_grad():
        for b in batches[:BATCHES]:
            reference(b)
    hook.remove()
    samples = torch.cat([s.transpose(0, 1).reshape(4, -1) for s in seen], dim=1)
    assert layer.count == samples.shape[1] == BATCHES * 16 * 8 * 8
    np.testing.assert_allclose(list(layer.mean), samples.mean(1).numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(list(layer.m2), ((samples - samples.mean(1, keepdim=True)) ** 2)
                               .sum(1).numpy(), rtol=1e-9, atol=1e-9)
    assert layer.num_batches_tracked == BATCHES
    # Batches of equal size: the pooled mean is the golden equal-weight mean of batch means.
    close(torch.tensor(list(layer.mean)), golden["scenarios"]["x_weights_precise_bn"]
          ["running_mean"], "PRECISE running_mean")
    opt.close()


def test_computeBatchNormStatistics_preciseOfTwoHalves_mergeIntoTheWhole(
        golden, optimizer, run_id, servers):
    model, opt = at_x(golden, optimizer.target, run_id)
    whole = compute(control_stub(model, opt, warmup_batches(golden), servers), run_id,
                    tpb.BATCH_NORM_STATISTICS_MODE_PRECISE)
    halves = [compute(control_stub(model, opt, warmup_batches(golden, part), servers), run_id,
                      tpb.BATCH_NORM_STATISTICS_MODE_PRECISE) for part in (0, 1)]
    a, b = halves
    n = a.count + b.count
    delta = np.array(b.mean) - np.array(a.mean)
    mean = np.array(a.mean) + delta * b.count / n
    m2 = np.array(a.m2) + np.array(b.m2) + delta ** 2 * a.count * b.count / n
    assert n == whole.count
    np.testing.assert_allclose(mean, list(whole.mean), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(m2, list(whole.m2), rtol=1e-9, atol=1e-9)
    opt.close()


def test_computeBatchNormStatistics_modeUnspecified_invalidArgument(
        golden, optimizer, run_id, servers):
    model, opt = at_x(golden, optimizer.target, run_id)
    stub = control_stub(model, opt, warmup_batches(golden), servers)
    with pytest.raises(grpc.RpcError) as e:
        stub.ComputeBatchNormStatistics(
            tpb.ComputeBatchNormStatisticsRequest(run_id=run_id), timeout=60)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    opt.close()
