"""Writes a further, small set of golden-format cases for the suites' generality tests.

Usage: python3 testdata/make_cases.py OUT_DIR [--seed N] [--check-port GOLDEN_BN_WARMUP.json]

The cases follow testdata/golden/FORMAT.md but deliberately use sizes the visible set does not
(batch sizes, channels, image sizes, step and warmup-batch counts, a BatchNorm1d over [N, C, L],
the backward record on a later batch), so a suite that hard-codes a visible case's size fails on
them. Every tensor comes from real PyTorch modules (BatchNorm1d/2d, Conv2d, Linear,
cross_entropy, autograd). The bn_warmup case needs AdamWScheduleFree, whose upstream package is
not available here: `adamw_schedule_free_step` below writes FORMAT.md section 2's update out in
torch ops. `--check-port` first replays a real bn_warmup case's recorded gradients through it and
fails unless it reproduces that case's y and x bit for bit; besides, the trainer suite
teacher-forces from the logged parameters, so its checks do not depend on the port.

Nothing here is a golden reference for the optimizer itself: the visible set in testdata/golden
(made with the authors' package) is.
"""

import argparse
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

PROVENANCE = {
    "generator": "testdata/make_cases.py (test-only)",
    "torch": torch.__version__,
    "python": sys.version.split()[0],
    "torch_num_threads": 1,
}


def t(x):
    """A float32 tensor as FORMAT.md's {"shape", "values"} object (exact float32 decimals)."""
    x = x.detach().to(torch.float32).contiguous()
    return {"shape": list(x.shape), "values": [float(v) for v in x.reshape(-1).tolist()]}


def ti(x):
    return {"shape": list(x.shape), "int_values": [int(v) for v in x.reshape(-1).tolist()]}


def header(case, kind, description):
    return {
        "format_version": 1,
        "case": case,
        "kind": kind,
        "description": description,
        "provenance": PROVENANCE,
    }


def batchnorm_case(case, module_cls, num_features, shape, momentum, batches, backward_at):
    bn = module_cls(num_features, eps=1e-5, momentum=momentum)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(num_features) * 0.5 + 1.0)
        bn.bias.copy_(torch.randn(num_features) * 0.3)
    c = header(case, "batchnorm", f"{module_cls.__name__}({num_features}), input {shape}")
    c.update(
        {
            "module": "torch.nn." + module_cls.__name__,
            "num_features": num_features,
            "eps": 1e-5,
            "momentum": momentum,
            "affine": True,
            "weight": t(bn.weight),
            "bias": t(bn.bias),
            "initial_running_mean": t(bn.running_mean),
            "initial_running_var": t(bn.running_var),
            "initial_num_batches_tracked": int(bn.num_batches_tracked),
            "batches": [],
        }
    )
    dims = [0] + list(range(2, len(shape)))
    n = math.prod(shape) // num_features
    bn.train()
    for i in range(batches):
        x = (torch.randn(*shape) * 1.7 + 0.4).requires_grad_(True)
        out = bn(x)
        var_b = x.detach().var(dim=dims, unbiased=False)
        rec = {
            "index": i,
            "input": t(x),
            "output": t(out),
            "exponential_average_factor": momentum
            if momentum is not None
            else 1.0 / int(bn.num_batches_tracked),
            "saved_mean": t(x.detach().mean(dim=dims)),
            "saved_invstd": t(1.0 / torch.sqrt(var_b + 1e-5)),
            "batch_var_biased": t(var_b),
            "batch_var_unbiased": t(var_b * n / (n - 1)),
            "running_mean_after": t(bn.running_mean),
            "running_var_after": t(bn.running_var),
            "num_batches_tracked_after": int(bn.num_batches_tracked),
        }
        if i == backward_at:
            g = torch.randn(*shape)
            (out * g).sum().backward()
            rec["backward"] = {
                "grad_output": t(g),
                "grad_input": t(x.grad),
                "grad_weight": t(bn.weight.grad),
                "grad_bias": t(bn.bias.grad),
            }
        c["batches"].append(rec)
    bn.eval()
    x = torch.randn(*shape)
    c["eval_forward"] = {"input": t(x), "output": t(bn(x))}
    return c


def gradcheck_case(case, kind, architecture, model, x, classes, randomise_bn):
    with torch.no_grad():
        randomise_bn(model.bn)
    labels = torch.randint(0, classes, (x.shape[0],))
    c = header(case, kind, architecture + f", batch {x.shape[0]}")
    c.update(
        {
            "architecture": architecture,
            "bn_eps": 1e-5,
            "bn_momentum": 0.1,
            "loss_function": "cross_entropy(logits, labels), reduction=mean",
            "params": {k: t(v) for k, v in model.named_parameters()},
            "buffers_before": buffers(model),
            "input": t(x),
            "labels": ti(labels),
        }
    )
    model.train()
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    c["logits"] = t(logits)
    c["loss"] = float(loss.detach())
    c["grads"] = {k: t(v.grad) for k, v in model.named_parameters()}
    c["buffers_after"] = buffers(model)
    return c


def buffers(model):
    out = {}
    for k, v in model.named_buffers():
        out[k] = int(v) if k.endswith("num_batches_tracked") else t(v)
    return out


def randomise(bn):
    bn.weight.copy_(torch.rand(bn.num_features) + 0.5)
    bn.bias.copy_(torch.randn(bn.num_features) * 0.2)


def adamw_schedule_free_step(params, state, group, grads):
    """One AdamWScheduleFree step (efficient form, train mode), FORMAT.md section 2."""
    k = group["k"]
    beta1, beta2 = group["betas"]
    sched = (k + 1) / group["warmup_steps"] if k < group["warmup_steps"] else 1.0
    bias_correction2 = 1 - beta2 ** (k + 1)
    lr = group["lr"] * sched
    group["lr_max"] = lr_max = max(lr, group["lr_max"])
    weight = ((k + 1) ** group["r"]) * (lr_max ** group["weight_lr_power"])
    group["weight_sum"] += weight
    ckp1 = weight / group["weight_sum"] if group["weight_sum"] != 0 else 0
    adaptive_y_lr = lr * (beta1 * (1 - ckp1) - 1)
    with torch.no_grad():
        for name, y in params.items():
            s = state[name]
            g = grads[name].clone()
            s["exp_avg_sq"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denom = s["exp_avg_sq"].div(bias_correction2).sqrt_().add_(group["eps"])
            g.div_(denom)
            g.add_(y, alpha=group["weight_decay"])
            y.lerp_(s["z"], ckp1)
            y.add_(g, alpha=adaptive_y_lr)
            s["z"].sub_(g, alpha=lr)
    group["k"] = k + 1
    group["scheduled_lr"] = lr


def bn_warmup_case(case, cin, channels, classes, hw, n_data, train_bs, steps, warm_bs, warm_n):
    arch = (
        f"conv=Conv2d({cin},{channels},kernel_size=3,stride=1,padding=1,bias=False)"
        f" -> bn=BatchNorm2d({channels}, eps=1e-5, momentum=0.1) -> relu=ReLU"
        f" -> pool=AdaptiveAvgPool2d(1) -> flatten -> fc=Linear({channels},{classes})"
    )
    model = nn.Sequential()
    model.add_module("conv", nn.Conv2d(cin, channels, 3, padding=1, bias=False))
    model.add_module("bn", nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1))
    model.add_module("relu", nn.ReLU())
    model.add_module("pool", nn.AdaptiveAvgPool2d(1))
    model.add_module("flatten", nn.Flatten())
    model.add_module("fc", nn.Linear(channels, classes))
    protos = torch.randn(classes, cin, *hw)
    labels = torch.randint(0, classes, (n_data,))
    data = 0.6 * protos[labels] + torch.randn(n_data, cin, *hw)
    test_labels = torch.randint(0, classes, (9,))
    test_x = 0.6 * protos[test_labels] + torch.randn(9, cin, *hw)
    hp = {
        "lr": 0.02,
        "betas": [0.9, 0.999],
        "eps": 1e-8,
        "weight_decay": 0.01,
        "warmup_steps": 3,
        "r": 0.0,
        "weight_lr_power": 2.0,
        "inner_momentum": 0.0,
        "foreach": False,
    }
    params = dict(model.named_parameters())
    c = header(case, "bn_warmup", f"tiny CNN, batch {train_bs} of {cin}x{hw[0]}x{hw[1]}")
    c.update(
        {
            "architecture": arch,
            "loss_function": "cross_entropy(logits, labels), reduction=mean",
            "optimizer": "AdamWScheduleFree",
            "hyperparameters": hp,
            "parameter_order": list(params),
            "initial_params": {k: t(v) for k, v in params.items()},
            "initial_buffers": buffers(model),
            "dataset": {"x": t(data), "labels": ti(labels)},
            "train_batches": [torch.randperm(n_data)[:train_bs].tolist() for _ in range(steps)],
            "warmup_batches": [torch.randperm(n_data)[:warm_bs].tolist() for _ in range(warm_n)],
            "test_batch": {"x": t(test_x), "labels": ti(test_labels)},
            "train_log": [],
        }
    )
    group = dict(hp, k=0, lr_max=-1.0, weight_sum=0.0, scheduled_lr=0.0)
    state = {k: {"z": v.detach().clone(), "exp_avg_sq": torch.zeros_like(v)} for k, v in params.items()}
    model.train()
    for step, idx in enumerate(c["train_batches"]):
        model.zero_grad()
        loss = F.cross_entropy(model(data[idx]), labels[idx])
        loss.backward()
        grads = {k: v.grad.detach().clone() for k, v in params.items()}
        adamw_schedule_free_step(params, state, group, grads)
        c["train_log"].append(
            {
                "step": step,
                "loss": float(loss.detach()),
                "grads": {k: t(v) for k, v in grads.items()},
                "params_after": {k: t(v) for k, v in params.items()},
                "z_after": {k: t(s["z"]) for k, s in state.items()},
                "exp_avg_sq_after": {k: t(s["exp_avg_sq"]) for k, s in state.items()},
                "bn_running_mean_after": t(model.bn.running_mean),
                "bn_running_var_after": t(model.bn.running_var),
                "group_after": {
                    key: group[key] for key in ("k", "lr", "scheduled_lr", "lr_max", "weight_sum")
                },
            }
        )
    y = {k: v.detach().clone() for k, v in params.items()}
    beta1 = hp["betas"][0]
    x = {k: torch.lerp(y[k], state[k]["z"], 1 - 1 / beta1) for k in params}
    c["params_train_mode_y"] = {k: t(v) for k, v in y.items()}
    c["params_eval_mode_x"] = {k: t(v) for k, v in x.items()}
    training_stats = stats(model.bn)
    c["stats_after_training"] = training_stats

    def scenario(weights, reset, momentum, warm):
        with torch.no_grad():
            for k, v in params.items():
                v.copy_(weights[k])
            model.bn.running_mean.copy_(torch.tensor(training_stats["running_mean"]["values"]))
            model.bn.running_var.copy_(torch.tensor(training_stats["running_var"]["values"]))
            model.bn.num_batches_tracked.fill_(training_stats["num_batches_tracked"])
            if reset:
                model.bn.reset_running_stats()
            model.bn.momentum = momentum
            if warm:
                model.train()
                for idx in c["warmup_batches"]:
                    model(data[idx])
            model.eval()
            out = dict(stats(model.bn), test_logits=t(model(test_x)))
            model.bn.momentum = 0.1
            return out

    c["scenarios"] = {
        "y_weights_training_stats": scenario(y, False, 0.1, False),
        "x_weights_stale_stats": scenario(x, False, 0.1, False),
        "x_weights_readme_warmup": scenario(x, False, 0.1, True),
        "x_weights_precise_bn": scenario(x, True, None, True),
    }
    return c


def check_port(path):
    """Replays a real bn_warmup case's gradients through the port; returns the largest |error|."""
    with open(path) as f:
        c = json.load(f)

    def tensor(o):
        return torch.tensor(o["values"], dtype=torch.float32).reshape(o["shape"])

    params = {k: tensor(v) for k, v in c["initial_params"].items()}
    state = {k: {"z": v.clone(), "exp_avg_sq": torch.zeros_like(v)} for k, v in params.items()}
    group = dict(c["hyperparameters"], k=0, lr_max=-1.0, weight_sum=0.0)
    worst = 0.0
    for step in c["train_log"]:
        adamw_schedule_free_step(
            params, state, group, {k: tensor(v) for k, v in step["grads"].items()}
        )
        for k, v in step["params_after"].items():
            worst = max(worst, (params[k] - tensor(v)).abs().max().item())
    beta1 = c["hyperparameters"]["betas"][0]
    for k, v in c["params_eval_mode_x"].items():
        x = torch.lerp(params[k], state[k]["z"], 1 - 1 / beta1)
        worst = max(worst, (x - tensor(v)).abs().max().item())
    return worst


def stats(bn):
    return {
        "running_mean": t(bn.running_mean),
        "running_var": t(bn.running_var),
        "num_batches_tracked": int(bn.num_batches_tracked),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--check-port", metavar="GOLDEN_BN_WARMUP_JSON")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(1)
    if a.check_port:
        worst = check_port(a.check_port)
        if worst != 0.0:
            sys.exit(f"AdamWScheduleFree port differs from {a.check_port} by {worst}")
        print(f"AdamWScheduleFree port reproduces {a.check_port} bit for bit")
    os.makedirs(a.out, exist_ok=True)
    cases = [
        batchnorm_case("gen_bn2d_b5_cma", nn.BatchNorm2d, 3, [5, 3, 2, 3], None, 3, 1),
        batchnorm_case("gen_bn1d_ncl_b7", nn.BatchNorm1d, 4, [7, 4, 3], 0.1, 3, 2),
    ]
    cnn = nn.Sequential()
    cnn.add_module("conv", nn.Conv2d(2, 5, 3, padding=1))
    cnn.add_module("bn", nn.BatchNorm2d(5))
    cnn.add_module("relu", nn.ReLU())
    cnn.add_module("pool", nn.AdaptiveAvgPool2d(1))
    cnn.add_module("flatten", nn.Flatten())
    cnn.add_module("fc", nn.Linear(5, 3))
    cases.append(
        gradcheck_case(
            "gen_gradcheck_cnn_b7",
            "gradcheck_cnn",
            "conv=Conv2d(2,5,kernel_size=3,stride=1,padding=1,bias=True) -> bn=BatchNorm2d(5)"
            " -> relu=ReLU -> pool=AdaptiveAvgPool2d(1) -> flatten -> fc=Linear(5,3)",
            cnn,
            torch.randn(7, 2, 5, 4),
            3,
            randomise,
        )
    )
    mlp = nn.Sequential()
    mlp.add_module("fc1", nn.Linear(6, 9))
    mlp.add_module("bn", nn.BatchNorm1d(9))
    mlp.add_module("relu", nn.ReLU())
    mlp.add_module("fc2", nn.Linear(9, 5))
    cases.append(
        gradcheck_case(
            "gen_gradcheck_mlp_b11",
            "gradcheck_mlp",
            "fc1=Linear(6,9) -> bn=BatchNorm1d(9) -> relu=ReLU -> fc2=Linear(9,5)",
            mlp,
            torch.randn(11, 6) * 2.0,
            5,
            randomise,
        )
    )
    cases.append(bn_warmup_case("gen_bn_warmup_b6", 2, 3, 3, (5, 6), 40, 6, 7, 5, 9))
    for c in cases:
        with open(os.path.join(a.out, c["case"] + ".json"), "w") as f:
            json.dump(c, f)
    print("wrote " + ", ".join(c["case"] for c in cases))


if __name__ == "__main__":
    main()
