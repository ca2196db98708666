"""BatchNorm at x: the golden bn_warmup_cnn case (upstream AdamWScheduleFree and real PyTorch
modules) trained through the drop-in class, the authors' BN warmup at x, and an eval
checkpoint that PyTorch loads strictly."""

import collections
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import roadless.torch as rt
from test_golden import GOLDEN

CASE = GOLDEN / "bn_warmup_cnn.json"


def tensor(t):
    if isinstance(t, int):
        return torch.tensor(t, dtype=torch.int64)
    if "int_values" in t:
        return torch.tensor(t["int_values"], dtype=torch.int64).reshape(t["shape"])
    return torch.tensor(t["values"], dtype=torch.float32).reshape(t["shape"])


def cnn():
    return torch.nn.Sequential(collections.OrderedDict(
        conv=torch.nn.Conv2d(1, 4, 3, padding=1, bias=False), bn=torch.nn.BatchNorm2d(4),
        relu=torch.nn.ReLU(), pool=torch.nn.AdaptiveAvgPool2d(1), flatten=torch.nn.Flatten(),
        fc=torch.nn.Linear(4, 4)))


def initial(case):
    model = cnn()
    state = {n: tensor(t) for n, t in case["initial_params"].items()}
    state.update({n: tensor(t) for n, t in case["initial_buffers"].items()})
    model.load_state_dict(state, strict=True)
    return model


def close(actual, expected, what):
    np.testing.assert_allclose(actual.detach().numpy().reshape(-1),
                               tensor(expected).numpy().reshape(-1), rtol=1e-4, atol=1e-5,
                               err_msg=what)


@pytest.mark.skipif(not CASE.is_file(), reason="no bn_warmup_cnn golden case")
def test_bnWarmupCnn_trainWarmupAndSaveAtX_matchUpstreamAndLoadStrictly(optimizer, run_id, tmp_path):
    case = json.loads(CASE.read_text())
    data, labels = tensor(case["dataset"]["x"]), tensor(case["dataset"]["labels"])
    hp = dict(case["hyperparameters"], betas=tuple(case["hyperparameters"]["betas"]))
    hp.pop("foreach")
    model = initial(case)
    opt = rt.AdamWScheduleFree(model.named_parameters(), **hp, target=optimizer.target,
                               run_id=run_id, replica=0, replicas=1)
    opt.train()
    model.train()
    for batch in case["train_batches"]:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(data[batch]), labels[batch]).backward()
        opt.step()
    for n, p in model.named_parameters():
        close(p, case["params_train_mode_y"][n], "y of " + n)
    y = {n: p.detach().clone() for n, p in model.named_parameters()}

    warmup = [(data[b], labels[b]) for b in case["warmup_batches"]]
    path = tmp_path / "eval.safetensors"
    info = rt.save_eval_checkpoint(model, opt, path, loader=warmup, batches=50)
    assert info["step"] == "30" and info["bn_warmup_batches"] == "50"
    # Training is left as it was: y in the parameters, the training-time BN statistics.
    assert all(torch.equal(p, y[n]) for n, p in model.named_parameters())
    assert model.bn.num_batches_tracked.item() == 30

    expected = case["scenarios"]["x_weights_readme_warmup"]
    loaded = cnn()
    loaded.load_state_dict(load_file(str(path)), strict=True)
    loaded.eval()
    for n, p in loaded.named_parameters():
        close(p, case["params_eval_mode_x"][n], "x of " + n)
    close(loaded.bn.running_mean, expected["running_mean"], "running_mean")
    close(loaded.bn.running_var, expected["running_var"], "running_var")
    assert loaded.bn.num_batches_tracked.item() == expected["num_batches_tracked"]
    with torch.no_grad():
        close(loaded(tensor(case["test_batch"]["x"])), expected["test_logits"], "test logits")

    # bn_warmup itself: the same recipe in place, leaving the optimizer at x.
    rt.bn_warmup(model, warmup, batches=50, optimizer=opt)
    assert not opt.param_groups[0]["train_mode"] and not model.training
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                  loaded.state_dict().values()))
