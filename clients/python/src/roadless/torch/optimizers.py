"""The drop-in classes: the upstream ``schedulefree`` constructors (same arguments, names and
defaults), plus where the state lives. Each maps its param groups to Roadless parameter groups.

Roadless arguments (keyword-only, after the upstream ones):

- ``target``: "host:port" of the optimizer service (default $ROADLESS_TARGET or localhost:50051);
- ``targets``: instead of ``target``, the optimizer servers of a sharded run, in shard order (a
  list or a comma-separated string; default $ROADLESS_TARGETS): the run's tensors are spread over
  them by roadless.shard.ShardPlan, exactly as the Java clients spread them (see
  roadless.torch._sharding); one target is an unsharded run;
- ``unavailable_wait``: how long (seconds) a push to a sharded run waits for a shard that is down,
  beyond the client's own retries (default 600);
- ``run_id``: the run (default $ROADLESS_RUN_ID); every replica of a run names the same one;
- ``replica`` / ``replicas``: this process's index and the data-parallel world (default from
  torchrun's $RANK and $WORLD_SIZE, else 0 and 1). The run is SYNC: each step averages the
  replicas' gradients in replica order, which replaces DDP's all-reduce;
- ``grad_dtype``: "float32" (default; shared memory on the server's host) or "bfloat16" chunks;
- ``options``: a roadless.ClientOptions (deadlines, retries, shared memory on/off);
- ``client``: an existing roadless.OptimizerClient instead of target/options/credentials;
- ``token``, ``tls_ca_file``, ``tls_cert_file``/``tls_key_file``, ``plaintext``: how to reach
  the server (bearer token, TLS, mutual TLS; default $ROADLESS_TOKEN and friends; see
  roadless.credentials: a loopback target without TLS settings is plaintext, any other TLS);
- ``resume_window``: how many steps back a replay may reach after the server restarted from an
  older snapshot: the ``.grad`` tensors of that many previous steps are kept by reference
  (default 1; no copy, since ``zero_grad()`` replaces them; one written in place since is not
  replayed). Otherwise, or with 0, the optimizer rewinds to the server's step, and a loop
  driven by ``step_count`` redoes the lost steps.

``foreach`` is accepted for compatibility and ignored: the server does the math.
"""

import torch

from roadless.optimizer.v1 import run_pb2
from roadless.torch._base import ServerOptimizer

_FOREACH = hasattr(torch, "_foreach_mul_")


_CREDENTIALS = ("token", "tls_ca_file", "tls_cert_file", "tls_key_file", "plaintext")


def _server_args(kw):
    known = ("target", "targets", "run_id", "replica", "replicas", "options", "client",
             "grad_dtype", "resume_window", "unavailable_wait") + _CREDENTIALS
    unknown = set(kw) - set(known)
    if unknown:
        raise TypeError("unexpected arguments: %s" % ", ".join(sorted(unknown)))
    return dict(
        credentials={k: kw[k] for k in _CREDENTIALS if kw.get(k) is not None},
        target=kw.get("target"), run_id=kw.get("run_id"), replica=kw.get("replica"),
        replicas=kw.get("replicas"), options=kw.get("options"), client=kw.get("client"),
        grad_dtype=kw.get("grad_dtype", "float32"), resume_window=kw.get("resume_window", 1),
        targets=kw.get("targets"), unavailable_wait=kw.get("unavailable_wait", 600.0),
    )


def _schedule(g, hp):
    hp.r = float(g["r"])
    hp.weight_lr_power = float(g["weight_lr_power"])
    return hp


class SGDScheduleFree(ServerOptimizer):
    """Schedule-Free SGD (upstream ``schedulefree.SGDScheduleFree``)."""

    VARIANT = run_pb2.OPTIMIZER_VARIANT_SGD

    def __init__(self, params, lr=1.0, momentum=0.9, weight_decay=0, warmup_steps=0, r=0.0,
                 weight_lr_power=2.0, foreach=_FOREACH, **roadless):
        if not 0.0 <= momentum < 1.0:
            raise ValueError("Invalid momentum value: {}".format(momentum))
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, r=r,
                        warmup_steps=warmup_steps, weight_lr_power=weight_lr_power,
                        foreach=foreach)
        self._init_server(params, defaults, **_server_args(roadless))

    def _hyperparameters(self, g):
        return _schedule(g, run_pb2.Hyperparameters(
            lr=float(g["lr"]), beta=float(g["momentum"]), weight_decay=float(g["weight_decay"]),
            warmup_steps=int(g["warmup_steps"])))


class SGDScheduleFreeReference(SGDScheduleFree):
    """The authors' reference form of Schedule-Free SGD; starts in train mode, as upstream."""

    STARTS_IN_TRAIN_MODE = True


class AdamWScheduleFree(ServerOptimizer):
    """Schedule-Free AdamW (upstream ``schedulefree.AdamWScheduleFree``)."""

    VARIANT = run_pb2.OPTIMIZER_VARIANT_ADAMW

    def __init__(self, params, lr=0.0025, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 warmup_steps=0, r=0.0, weight_lr_power=2.0, inner_momentum=0.0,
                 foreach=_FOREACH, **roadless):
        defaults = dict(lr=lr, betas=betas, eps=eps, r=r, weight_decay=weight_decay,
                        warmup_steps=warmup_steps, weight_lr_power=weight_lr_power,
                        inner_momentum=inner_momentum, foreach=foreach)
        self._init_server(params, defaults, **_server_args(roadless))

    def _hyperparameters(self, g):
        hp = run_pb2.Hyperparameters(
            lr=float(g["lr"]), beta=float(g["betas"][0]), beta2=float(g["betas"][1]),
            eps=float(g["eps"]), weight_decay=float(g["weight_decay"]),
            warmup_steps=int(g["warmup_steps"]), inner_momentum=float(g["inner_momentum"]))
        if g.get("decay_at_z"):
            hp.decay_at_z = True
        return _schedule(g, hp)


class AdamWScheduleFreeReference(AdamWScheduleFree):
    """The authors' reference AdamW-SF, with ``decay_at_z`` (decay z instead of y)."""

    def __init__(self, params, lr=0.0025, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 warmup_steps=0, r=0.0, weight_lr_power=2.0, decay_at_z=False,
                 inner_momentum=0.0, foreach=False, **roadless):
        defaults = dict(lr=lr, betas=betas, eps=eps, r=r, weight_decay=weight_decay,
                        warmup_steps=warmup_steps, weight_lr_power=weight_lr_power,
                        decay_at_z=decay_at_z, inner_momentum=inner_momentum, foreach=foreach)
        self._init_server(params, defaults, **_server_args(roadless))


class AdamWScheduleFreePaper(ServerOptimizer):
    """AdamW-SF as in the paper (upstream releases before 1.3): bias correction in the lr."""

    VARIANT = run_pb2.OPTIMIZER_VARIANT_ADAMW_PAPER

    def __init__(self, params, lr=0.0025, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 warmup_steps=0, r=0.0, weight_lr_power=2.0, foreach=_FOREACH, **roadless):
        defaults = dict(lr=lr, betas=betas, eps=eps, r=r, weight_decay=weight_decay,
                        warmup_steps=warmup_steps, weight_lr_power=weight_lr_power,
                        foreach=foreach)
        self._init_server(params, defaults, **_server_args(roadless))

    def _hyperparameters(self, g):
        return _schedule(g, run_pb2.Hyperparameters(
            lr=float(g["lr"]), beta=float(g["betas"][0]), beta2=float(g["betas"][1]),
            eps=float(g["eps"]), weight_decay=float(g["weight_decay"]),
            warmup_steps=int(g["warmup_steps"])))


class RAdamScheduleFree(ServerOptimizer):
    """Schedule-Free RAdam (upstream ``schedulefree.RAdamScheduleFree``): no warmup."""

    VARIANT = run_pb2.OPTIMIZER_VARIANT_RADAM

    def __init__(self, params, lr=0.0025, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, r=0.0,
                 weight_lr_power=2.0, foreach=_FOREACH, silent_sgd_phase=True, **roadless):
        defaults = dict(lr=lr, betas=betas, eps=eps, r=r, weight_decay=weight_decay,
                        weight_lr_power=weight_lr_power, foreach=foreach,
                        silent_sgd_phase=silent_sgd_phase)
        self._init_server(params, defaults, **_server_args(roadless))

    def _hyperparameters(self, g):
        return _schedule(g, run_pb2.Hyperparameters(
            lr=float(g["lr"]), beta=float(g["betas"][0]), beta2=float(g["betas"][1]),
            eps=float(g["eps"]), weight_decay=float(g["weight_decay"]),
            silent_sgd_phase=bool(g["silent_sgd_phase"])))


class ScheduleFreeWrapper(ServerOptimizer):
    """Schedule-Free over a base optimizer (upstream ``schedulefree.ScheduleFreeWrapper``).
    The base must be a ``torch.optim.SGD`` or ``torch.optim.Adam``: the server runs its update
    with the base's hyperparameters; the base object itself is not stepped."""

    def __init__(self, base_optimizer, momentum=0.9, weight_decay_at_y=0.0, r=0,
                 weight_lr_power=2, **roadless):
        if isinstance(base_optimizer, torch.optim.Adam) and not isinstance(
                base_optimizer, torch.optim.AdamW):
            self.VARIANT = run_pb2.OPTIMIZER_VARIANT_WRAPPER_ADAM
        elif type(base_optimizer) is torch.optim.SGD:
            self.VARIANT = run_pb2.OPTIMIZER_VARIANT_WRAPPER_SGD
        else:
            raise TypeError("ScheduleFreeWrapper on Roadless wraps torch.optim.SGD or Adam")
        self.base = base_optimizer
        groups = []
        for g in base_optimizer.param_groups:
            group = {k: v for k, v in g.items()}
            if "param_names" in g:
                group["params"] = list(zip(g["param_names"], g["params"]))
                del group["param_names"]
            groups.append(group)
        defaults = dict(momentum=momentum, weight_decay_at_y=weight_decay_at_y, r=r,
                        weight_lr_power=weight_lr_power)
        for g in groups:
            for k in ("weight_decay_at_y", "r", "weight_lr_power"):
                g.setdefault(k, defaults[k])
            g["base_momentum"] = g.get("betas", (g.get("momentum"),))[0]
            g["momentum"] = momentum
        self._init_server(groups, defaults, **_server_args(roadless))

    def _hyperparameters(self, g):
        hp = run_pb2.Hyperparameters(
            lr=float(g["lr"]), beta=float(g["momentum"]), weight_decay=float(g["weight_decay"]),
            weight_decay_at_y=float(g["weight_decay_at_y"]),
            base_momentum=float(g["base_momentum"] or 0.0))
        if self.VARIANT == run_pb2.OPTIMIZER_VARIANT_WRAPPER_ADAM:
            hp.beta2 = float(g["betas"][1])
            hp.eps = float(g["eps"])
        else:
            hp.base_dampening = float(g["dampening"])
            hp.base_nesterov = bool(g["nesterov"])
        return _schedule(g, hp)
