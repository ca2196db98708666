"""The server-backed torch.optim.Optimizer that every drop-in class specialises.

The parameters hold y (train mode) or x (eval mode), as upstream; z, x and the moments live on
the optimizer server. step() pushes every parameter's gradient for the run's step k on this
replica's Train stream and writes the answer, y_{k+1}, into the parameters in place.
"""

import contextlib
import os
import re
import time
import warnings

import numpy as np
import torch

from roadless import errors
from roadless._tensors import BFLOAT16, FLOAT32
from roadless.client import EVAL, TRAIN, ClientOptions, OptimizerClient
from roadless.common.v1 import tensor_pb2
from roadless.optimizer.v1 import run_pb2
from roadless.sharded import ShardedClient
from roadless.torch._sharding import ShardingMixin
from roadless.torch._state import StateMixin

_NAME = re.compile(r"^[A-Za-z0-9_.:/-]{1,256}$")


def _split_params(params):
    """Groups as [(group dict without params, [names or None], [tensors])]."""
    params = list(params)
    if not params:
        raise ValueError("optimizer got an empty parameter list")
    if not isinstance(params[0], dict):
        params = [{"params": params}]
    out = []
    for g in params:
        g = dict(g)
        items = g.pop("params")
        items = [items] if isinstance(items, torch.Tensor) else list(items)
        given = g.pop("param_names", None)
        names, tensors = [], []
        for i, item in enumerate(items):
            if isinstance(item, tuple):
                names.append(item[0])
                tensors.append(item[1])
            else:
                names.append(given[i] if given else None)
                tensors.append(item)
        out.append((g, names, tensors))
    return out


def _flat(tensors):
    """Flat float32 numpy arrays (views of CPU float32 tensors, no copy)."""
    return [t.detach().to("cpu", torch.float32).reshape(-1).numpy() for t in tensors]


def _client_for(target, targets, options, credentials):
    """The client of ``target``, or of the shards ``targets`` (a list, or a comma-separated
    string; default $ROADLESS_TARGETS, else $ROADLESS_TARGET), each with the same credentials."""
    if target is not None and targets is not None:
        raise ValueError("give target= or targets=, not both")
    if target is None and targets is None:
        targets = os.environ.get("ROADLESS_TARGETS") or None
    if isinstance(targets, str):
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    options = options or ClientOptions()
    if targets is not None and len(targets) > 1:
        return ShardedClient(targets, options=options, credentials=credentials)
    if targets:
        target = targets[0]
    target = target or os.environ.get("ROADLESS_TARGET", "localhost:50051")
    return OptimizerClient(target, options=options, **(credentials or {}))


class ServerOptimizer(ShardingMixin, StateMixin, torch.optim.Optimizer):
    """Base of the drop-in classes. Subclasses set VARIANT, STARTS_IN_TRAIN_MODE and
    ``_hyperparameters(group)``."""

    VARIANT = run_pb2.OPTIMIZER_VARIANT_UNSPECIFIED
    STARTS_IN_TRAIN_MODE = False

    def _init_server(self, params, defaults, target, run_id, replica, replicas, options, client,
                     grad_dtype, resume_window, credentials=None, targets=None,
                     unavailable_wait=600.0):
        groups = _split_params(params)
        self._names, group_names = [], []
        torch_groups = []
        position = 0
        for g_index, (g, names, tensors) in enumerate(groups):
            group_name = g.pop("name", None) or "group%d" % g_index
            group_names.append(str(group_name))
            for n in names:
                self._names.append(n if n is not None else "params.%d" % position)
                position += 1
            torch_groups.append(dict(g, params=tensors))
        for n in self._names:
            if not _NAME.match(n):
                raise ValueError("parameter name %r is not a valid tensor name" % n)
        if len(set(self._names)) != len(self._names):
            raise ValueError("parameter names must be unique")
        defaults = dict(defaults, train_mode=self.STARTS_IN_TRAIN_MODE)
        torch.optim.Optimizer.__init__(self, torch_groups, defaults)
        for g, name in zip(self.param_groups, group_names):
            g["name"] = name
        self._params = [p for g in self.param_groups for p in g["params"]]
        for p in self._params:
            if p.dtype != torch.float32:
                raise TypeError("Roadless keeps float32 state; parameter of dtype %s" % p.dtype)

        self.run_id = run_id or os.environ.get("ROADLESS_RUN_ID")
        if not self.run_id:
            raise ValueError("give run_id= (or set ROADLESS_RUN_ID)")
        self.replica = int(os.environ.get("RANK", 0)) if replica is None else int(replica)
        self.replicas = int(os.environ.get("WORLD_SIZE", 1)) if replicas is None else int(replicas)
        if client is None:
            client = _client_for(target, targets, options, credentials)
            self._owns_client = True
        elif credentials or targets:
            raise ValueError("credentials go with a target; the given client carries its own")
        else:
            self._owns_client = False
        if isinstance(client, ShardedClient) and len(client) == 1:
            client = client.shards[0]  # one shard is the run itself
        self.client = client
        self._dtype = {"float32": FLOAT32, "bfloat16": BFLOAT16}[grad_dtype]
        self._resume_window = int(resume_window)
        self._unavailable_wait = float(unavailable_wait)
        self._sizes = [p.numel() for p in self._params]
        self._total = sum(self._sizes)
        self._y = {n: np.empty(s, np.float32) for n, s in zip(self._names, self._sizes)}
        self._retained = {}  # step -> gradients pushed for it (for a replay after a restart)
        self._sent_hp = {}
        self._plan = None  # the ShardPlan of a sharded run (S > 1), else None
        self._connect()

    # --- the run ---------------------------------------------------------------------------

    def _spec(self):
        tensors = [
            tensor_pb2.TensorDescriptor(name=n, dtype=FLOAT32, shape=list(p.shape))
            for n, p in zip(self._names, self._params)
        ]
        groups, at = [], 0
        for g in self.param_groups:
            names = self._names[at : at + len(g["params"])]
            at += len(g["params"])
            groups.append(
                run_pb2.ParameterGroup(
                    name=g["name"], tensor_names=names, hyperparameters=self._hyperparameters(g)
                )
            )
        return run_pb2.RunSpec(
            tensors=tensors,
            parameter_groups=groups,
            variant=self.VARIANT,
            replicas=self.replicas,
            mode=run_pb2.STEP_MODE_SYNC,
        )

    def _connect(self):
        status = self.client.create_run(self.run_id, self._spec()).status
        self._make_lanes()
        for g in self.param_groups:
            self._sent_hp[g["name"]] = self._hyperparameters(g).SerializeToString()
        if not status.initialized and self.replica == 0:
            arrays = [p.detach().cpu().reshape(-1).numpy() for p in self._params]
            try:
                self.client.upload_initial_values(self.run_id, self._names, arrays)
            except errors.InitialValuesConflict:
                pass  # another process uploaded first (a restarted rank 0): the run's values win
        self._load_current()

    def _wait_for(self, fetch):
        """Retries fetch() while the run has no initial values yet (replica 0 uploads them) or is
        gone for a moment (replica 0 replacing it in load_state_dict), up to the deadline."""
        give_up = time.monotonic() + self.client.options.deadline
        while True:
            try:
                return fetch()
            except (errors.InitialValuesMissing, errors.RunNotFound):
                if time.monotonic() > give_up:
                    raise
                time.sleep(0.05)

    def _load_current(self):
        """Loads the run's current y (and x in eval mode) into the parameters."""
        while True:
            step, _ = self._wait_for(
                lambda: self.client.get_parameters(self.run_id, TRAIN, into=self._y))
            self._k = step
            if self._train_mode():
                self._copy_into_params(self._y)
                return
            try:
                self._load_x()
                return
            except errors.RunNotFound:
                # Replaced between the two reads (replica 0 in load_state_dict): read both again;
                # the TRAIN read gives up at the deadline if the run stays gone.
                time.sleep(0.05)

    def _load_x(self):
        step, x = self.client.get_parameters(self.run_id, EVAL, min_step=self._k)
        if step != self._k:
            raise errors.RoadlessError(
                None, "run %s is at step %d, this replica at %d" % (self.run_id, step, self._k)
            )
        self._copy_into_params(x)

    def _copy_into_params(self, values):
        with torch.no_grad():
            for n, p in zip(self._names, self._params):
                p.copy_(torch.from_numpy(values[n]).view_as(p))

    def _save_y(self):
        """Keeps y while the parameters hold x (in train mode y lives only in the parameters)."""
        for n, p in zip(self._names, self._params):
            np.copyto(self._y[n], p.detach().reshape(-1).cpu().numpy())

    def _landing(self):
        """Where the Train answer's y chunks go: straight into the parameters' memory when they
        are contiguous float32 CPU tensors, else into self._y (then copied by _landed)."""
        if all(p.device.type == "cpu" and p.is_contiguous() for p in self._params):
            return {n: p.detach().view(-1).numpy() for n, p in zip(self._names, self._params)}
        return self._y

    def _landed(self, into):
        if into is self._y:
            self._copy_into_params(self._y)

    def _train_mode(self):
        return self.param_groups[0]["train_mode"]

    @property
    def step_count(self):
        """The run's completed steps k: the parameters hold y_k (train mode) or x_k."""
        return self._k

    def status(self):
        """The run's GetRunStatus (k, lr_k, lr_max, weight_sum, c_k per group)."""
        return self.client.run_status(self.run_id)

    # --- train / eval ----------------------------------------------------------------------

    @torch.no_grad()
    def train(self):
        """Parameters to y, the point where gradients are computed (as upstream)."""
        if not self._train_mode():
            self._copy_into_params(self._y)
        for g in self.param_groups:
            g["train_mode"] = True

    @torch.no_grad()
    def eval(self):
        """Parameters to x, the average: evaluate and save from here (as upstream)."""
        if self._train_mode():
            self._save_y()
            self._load_x()
        for g in self.param_groups:
            g["train_mode"] = False

    @contextlib.contextmanager
    def at_x(self):
        """Holds x in the parameters inside the block, and the previous mode after it."""
        was_training = self._train_mode()
        self.eval()
        try:
            yield self
        finally:
            if was_training:
                self.train()

    # --- step ------------------------------------------------------------------------------

    def step(self, closure=None):
        if not self._train_mode():
            raise RuntimeError(
                "Optimizer was not in train mode when step is called. Call optimizer.train() "
                "before training and optimizer.eval() before evaluating."
            )
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._sync_hyperparameters()
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self._params]
        if self._resume_window > 0:
            # Kept by reference, not copied: zero_grad() replaces .grad by default. The version
            # counters tell whether anything wrote into them since (then they are not replayed).
            self._retained[self._k] = [(g, g._version) for g in grads]
            for old in [s for s in self._retained if s < self._k - self._resume_window]:
                del self._retained[old]
        self._push(self._k, _flat(grads))
        return loss

    def _attempt(self, step, gradient):
        into = self._landing()
        answer = self._lanes[0].attempt(step, gradient, into)
        self._landed(into)
        return answer

    def _push(self, step, gradient):
        if self._plan is not None:
            return self._push_sharded(step, gradient)
        try:
            header = self.client.call(lambda: self._attempt(step, gradient))
        except errors.StepInFuture:
            # The server came back from an older snapshot: replay what we still hold.
            server_step = self.client.run_status(self.run_id).step
            if all(self._replayable(s) for s in range(server_step, step)):
                for s in range(server_step, step):
                    kept = _flat([g for g, _ in self._retained[s]])
                    self.client.call(lambda s=s, kept=kept: self._attempt(s, kept))
                header = self.client.call(lambda: self._attempt(step, gradient))
            else:
                warnings.warn(
                    "run %s came back at step %d, this replica was at %d: continuing from the "
                    "server's step (drive the loop by optimizer.step_count for an exact resume)"
                    % (self.run_id, server_step, step)
                )
                self._retained.clear()
                self._lanes[0].reset()
                step_now, _ = self.client.get_parameters(self.run_id, TRAIN, into=self._y)
                self._copy_into_params(self._y)
                self._k = step_now
                return
        self._k = header.parameters.step

    def _replayable(self, step):
        kept = self._retained.get(step)
        return kept is not None and all(g._version == v for g, v in kept)

    @property
    def uses_shared_memory(self):
        """True while pushes go through the server's (every shard's) shared-memory segment."""
        return all(lane.segment is not None for lane in self._lanes)

    def _sync_hyperparameters(self):
        """Sends a group's changed hyperparameters (e.g. an lr scheduler's lr) before the step."""
        for g in self.param_groups:
            hp = self._hyperparameters(g)
            wire = hp.SerializeToString()
            if self._sent_hp.get(g["name"]) != wire:
                if self._plan is not None:
                    self._update_sharded(g["name"], hp)
                else:
                    self.client.update_hyperparameters(
                        self.run_id, g["name"], hp, expected_step=self._k
                    )
                self._sent_hp[g["name"]] = wire

    def close(self):
        """Ends the Train streams (and the channels when this optimizer created them)."""
        for lane in self._lanes:
            lane.close()
        if self._owns_client:
            self.client.close()
