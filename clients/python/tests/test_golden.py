"""The golden optimizer cases (real upstream schedulefree output) through the drop-in classes
against a real optimizer server: every parameter's y after each step(), x after eval()."""

import json
import os
import pathlib

import numpy as np
import pytest
import torch

import roadless.torch as rt

GOLDEN = pathlib.Path(
    os.environ.get("ROADLESS_GOLDEN_DIR", pathlib.Path(__file__).resolve().parents[4] / "shared/golden")
)
RTOL, ATOL = 1e-5, 1e-6


def cases():
    files = sorted(GOLDEN.glob("*.json")) if GOLDEN.is_dir() else []
    found = [f for f in files if json.loads(f.read_text())["kind"] == "optimizer"]
    if not found and os.environ.get("CI"):
        raise RuntimeError("no golden optimizer cases in %s (set ROADLESS_GOLDEN_DIR)" % GOLDEN)
    return found


def build(case, named, run_id, target, **credentials):
    hp = dict(case["hyperparameters"])
    hp.pop("foreach", None)
    if "betas" in hp:
        hp["betas"] = tuple(hp["betas"])
    server = dict(target=target, run_id=run_id, replica=0, replicas=1, **credentials)
    name = case["optimizer"]
    if name == "ScheduleFreeWrapperReference":
        base = case["base_optimizer"]
        cls = {"torch.optim.SGD": torch.optim.SGD, "torch.optim.Adam": torch.optim.Adam}[base["class"]]
        bhp = {k: v for k, v in base["hyperparameters"].items()
               if k in ("lr", "momentum", "dampening", "weight_decay", "nesterov", "betas", "eps")}
        if "betas" in bhp:
            bhp["betas"] = tuple(bhp["betas"])
        return rt.ScheduleFreeWrapper(cls([p for _, p in named], **bhp), **hp, **server)
    return getattr(rt, name)(named, **hp, **server)


def close(actual, expected, what):
    np.testing.assert_allclose(actual, np.asarray(expected, np.float32), rtol=RTOL, atol=ATOL,
                               err_msg=what)


@pytest.mark.parametrize("path", cases(), ids=lambda p: p.stem)
def test_goldenCase_dropInClass_matchesUpstreamYAndX(path, tls_optimizer, run_id):
    """Over TLS with a bearer token, as a deployed server is reached."""
    optimizer = tls_optimizer
    case = json.loads(path.read_text())
    params = [torch.nn.Parameter(torch.tensor(p["initial"], dtype=torch.float32).reshape(p["shape"]))
              for p in case["params"]]
    names = [p["name"] for p in case["params"]]
    wrapper = case["optimizer"] == "ScheduleFreeWrapperReference"
    opt = build(case, list(zip(names, params)), run_id, optimizer.target,
                tls_ca_file=str(optimizer.ca), token=optimizer.token)
    try:
        opt.train()
        for record in case["steps"]:
            assert opt.step_count == record["k"]
            for n, p in zip(names, params):
                p.grad = torch.tensor(record["grads"][n], dtype=torch.float32).reshape(p.shape)
            opt.step()
            for n, p in zip(names, params):
                close(p.detach().numpy().reshape(-1), record["after"][n]["y"],
                      "%s step %d y of %s" % (path.stem, record["k"], n))
            opt.eval()
            for n, p in zip(names, params):
                close(p.detach().numpy().reshape(-1), record["after"][n]["x"],
                      "%s step %d x of %s" % (path.stem, record["k"], n))
            opt.train()
        if not wrapper:
            # The schedule scalars the server holds are upstream's (exact doubles in the case).
            last = case["steps"][-1]["group_after"]
            group = opt.status().groups[0]
            assert group.step == last["k"]
            assert group.lr_max == pytest.approx(last["lr_max"], rel=1e-12)
            assert group.weight_sum == pytest.approx(last["weight_sum"], rel=1e-12)
    finally:
        opt.client.delete_run(run_id)
        opt.close()
