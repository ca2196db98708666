"""One run spread over S optimizer servers, seen as one run (the Python side of the Java client's
``ShardedClient``, ``ShardedHyperparameters`` and ``ShardedState``).

``ShardedClient(targets, spec)`` (or ``clients=``) holds one OptimizerClient per shard, in shard
order, each with its own credentials, and the ShardPlan of the run's spec over them. It answers
the run-level calls of OptimizerClient for the whole run: calls go to every shard in parallel
(threads) and a failure of any shard is the call's failure, with the shard's typed error
unchanged (one error model). The run's step is the slowest shard's; parameters come back whole,
all from one step; a hyperparameter change reaches every shard holding the group at one step
(``expected_step``); ExportState gathers one whole state (the state one server would hold) and
ImportState cuts a whole state onto the shards, so a state_dict moves between any S.
"""

import concurrent.futures
import time

import grpc

from roadless import errors
from roadless.client import ClientOptions, OptimizerClient
from roadless.optimizer.v1 import optimizer_service_pb2 as pb
from roadless.shard import ShardPlan
from roadless import _shard_state


def step_mismatch(message, **metadata):
    """The STEP_MISMATCH error a shard would raise, for refusals the sharded client decides."""
    return errors.BY_REASON["STEP_MISMATCH"](
        grpc.StatusCode.ABORTED, message, "STEP_MISMATCH",
        {k: str(v) for k, v in metadata.items()}, errors.DOMAIN)


def _holds(live, change):
    """Whether every field set in ``change`` has that value in ``live`` (Hyperparameters)."""
    return all(live.HasField(f.name) and getattr(live, f.name) == v
               for f, v in change.ListFields())


class ShardedClient:
    """The client of one run over the shards ``targets`` (or ``clients``, which the caller owns).
    ``credentials`` (token=, tls_ca_file=, ...) apply to every target; ``per_target`` (a list of
    such dicts, one per target) gives each its own."""

    def __init__(self, targets=None, spec=None, clients=None, options=None, credentials=None,
                 per_target=None):
        if (targets is None) == (clients is None):
            raise ValueError("give exactly one of targets and clients")
        if clients is None:
            targets = list(targets)
            per_target = per_target or [{}] * len(targets)
            clients = [OptimizerClient(t, options=options or ClientOptions(),
                                       **dict(credentials or {}, **extra))
                       for t, extra in zip(targets, per_target)]
            self._owned = True
        else:
            self._owned = False
        self.shards = list(clients)
        if not self.shards:
            raise ValueError("a sharded run needs at least one shard")
        self.options = self.shards[0].options
        self.plan = ShardPlan(spec, len(self.shards)) if spec is not None else None
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, len(self.shards)), thread_name_prefix="roadless-shard")

    def close(self):
        self._pool.shutdown(wait=False)
        if self._owned:
            for c in self.shards:
                c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __len__(self):
        return len(self.shards)

    def on_every_shard(self, call, shards=None):
        """[call(s) for s in shards] in parallel; waits for all, then raises the first failure."""
        shards = range(len(self.shards)) if shards is None else shards
        if len(shards) == 1:
            return [call(shards[0])]
        futures = [self._pool.submit(call, s) for s in shards]
        concurrent.futures.wait(futures)
        for f in futures:
            if f.exception() is not None:
                raise f.exception()
        return [f.result() for f in futures]

    def call(self, attempt):
        return self.shards[0].call(attempt)

    # --- runs ------------------------------------------------------------------------------

    def create_run(self, run_id, spec=None):
        """Creates (or finds, with the same spec) every shard's run. Returns a CreateRunResponse
        for the whole run: created if any shard created it, and the whole status."""
        if spec is not None and (self.plan is None or self.plan.spec != spec):
            self.plan = ShardPlan(spec, len(self.shards))
        answers = self.on_every_shard(
            lambda s: self.shards[s].create_run(run_id, self.plan.shards[s].spec))
        return pb.CreateRunResponse(created=any(a.created for a in answers),
                                    status=self._whole([a.status for a in answers]))

    def statuses(self, run_id):
        return self.on_every_shard(lambda s: self.shards[s].run_status(run_id))

    def run_status(self, run_id):
        """The whole run's status: the slowest shard's step and snapshot step, the whole spec,
        each group as the slowest shard holding it reports it, every shard's pending replicas."""
        return self._whole(self.statuses(run_id))

    def _whole(self, all_statuses):
        whole = pb.RunStatus()
        whole.CopyFrom(all_statuses[0])
        whole.spec.CopyFrom(self.plan.spec)
        whole.step = min(s.step for s in all_statuses)
        whole.snapshot_step = min(s.snapshot_step for s in all_statuses)
        whole.initialized = all(s.initialized for s in all_statuses)
        groups = {}
        for s in all_statuses:
            for g in s.groups:
                if g.name not in groups or g.step < groups[g.name].step:
                    groups[g.name] = g
        del whole.groups[:]
        whole.groups.extend(groups[g.name] for g in self.plan.spec.parameter_groups
                            if g.name in groups)
        del whole.pending_replicas[:]
        whole.pending_replicas.extend(sorted({r for s in all_statuses for r in s.pending_replicas}))
        whole.refused_pushes.clear()
        for s in all_statuses:
            for k, v in s.refused_pushes.items():
                whole.refused_pushes[k] += v
        return whole

    def delete_run(self, run_id):
        return any(self.on_every_shard(lambda s: self.shards[s].delete_run(run_id)))

    def list_runs(self):
        return sorted(set.intersection(*[set(r) for r in self.on_every_shard(
            lambda s: self.shards[s].list_runs())]))

    # --- tensors ---------------------------------------------------------------------------

    def upload_initial_values(self, run_id, names, arrays):
        """Uploads the whole run's initial values (flat arrays, spec order), each shard its part."""
        if list(names) != self.plan.names:
            raise ValueError("names are not the run's tensors in spec order")
        parts = self.plan.split(arrays)
        return all(self.on_every_shard(lambda s: self.shards[s].upload_initial_values(
            run_id, self.plan.shards[s].names, parts[s])))

    def get_parameters(self, run_id, sequence, min_step=0, into=None, deadline=None):
        """(step, {name: flat float32 array}) of the whole run, every shard's part from one step:
        the step of the shard furthest ahead (or min_step); a shard behind is waited for
        (min_step) while the replicas bring it forward. ABORTED if the run kept moving."""

        def read(s, at):
            return self.shards[s].get_parameters(run_id, sequence, min_step=at, deadline=deadline)

        parts = self.on_every_shard(lambda s: read(s, min_step))
        for _ in range(5):
            step = max(p[0] for p in parts)
            done = parts
            parts = self.on_every_shard(lambda s: done[s] if done[s][0] == step else read(s, step))
            if all(p[0] == step for p in parts):
                return step, self.plan.assemble([p[1] for p in parts], into)
        raise errors.RoadlessError(grpc.StatusCode.ABORTED,
                                   "run %s kept moving while its shards were read" % run_id)

    # --- hyperparameters -------------------------------------------------------------------

    def hyperparameter_outcomes(self, run_id, group, change, expected_step):
        """The change on every shard holding the group at expected_step: [(shard, changed, step,
        GroupStatus)]. A shard that refuses (STEP_MISMATCH) but already holds every changed value
        counts as changed, so a retry with the same step after a partial change converges."""
        holders = self.plan.holders(group)
        if not holders:
            raise errors.BY_REASON["GROUP_NOT_FOUND"](
                grpc.StatusCode.NOT_FOUND, "run '%s' has no group '%s'" % (run_id, group),
                "GROUP_NOT_FOUND", {"run_id": run_id, "group": group}, errors.DOMAIN)

        def one(s):
            client = self.shards[s]
            try:
                return s, True, expected_step, client.update_hyperparameters(
                    run_id, group, change, expected_step=expected_step)
            except errors.RoadlessError as e:
                if e.reason != "STEP_MISMATCH":
                    raise
                status = client.run_status(run_id)
                held = [g for g in status.groups if g.name == group]
                if not held:
                    raise
                return s, _holds(held[0].hyperparameters, change), status.step, held[0]

        return self.on_every_shard(one, holders)

    def update_hyperparameters(self, run_id, group, change, expected_step=None):
        """Changes a group on every shard holding it, at one step: ``expected_step``, or (None)
        the step those shards are at (STEP_MISMATCH if they differ). Returns the first holding
        shard's group. STEP_MISMATCH names the shards that changed and those that refused."""
        if expected_step is None:
            holders = self.plan.holders(group)
            steps = sorted({st.step for i, st in enumerate(self.statuses(run_id)) if i in holders})
            if len(steps) > 1:
                raise step_mismatch("run '%s' shards holding group '%s' are at steps %s; retry "
                                    "between steps" % (run_id, group, steps),
                                    run_id=run_id, group=group)
            expected_step = steps[0] if steps else 0
        outcomes = self.hyperparameter_outcomes(run_id, group, change, expected_step)
        if not all(o[1] for o in outcomes):
            raise refusal(run_id, group, expected_step, outcomes)
        return outcomes[0][3]

    # --- state -----------------------------------------------------------------------------

    def export_state(self, run_id, attempts=5):
        """The whole run's state (one server's form), gathered from every shard at one step;
        exported again while the shards' steps differ (the run moved on between the exports)."""
        for _ in range(attempts):
            parts = self.on_every_shard(lambda s: self.shards[s].export_state(run_id))
            if len({_shard_state.step(p[0].header) for p in parts}) == 1:
                return _shard_state.gather(self.plan, parts)
            time.sleep(0.05)
        raise errors.RoadlessError(grpc.StatusCode.ABORTED,
                                   "run %s kept moving while its shards were exported" % run_id)

    def import_state(self, run_id, exported):
        """ImportState of a whole state (any S's) onto every shard. Returns an
        ImportStateResponse: created if any shard created its run, and the whole status."""
        # Cut by the plan of the state's own spec (its tensors are this run's, its groups and
        # hyperparameters are the state's), as the Java ShardedState.split does.
        self.plan = ShardPlan(exported[0].header.spec, len(self.shards))
        parts = _shard_state.split(self.plan, exported)
        answers = self.on_every_shard(lambda s: self.shards[s].import_state(run_id, parts[s]))
        return pb.ImportStateResponse(created=any(a.created for a in answers),
                                      status=self._whole([a.status for a in answers]))


def refusal(run_id, group, step, outcomes):
    changed = [o[0] for o in outcomes if o[1]]
    refused = ["%d@%d" % (o[0], o[2]) for o in outcomes if not o[1]]
    torn = ("no shard changed" if not changed else
            "shards %s changed; retry with the same step while every shard is at it" % changed)
    return step_mismatch(
        "group '%s' of run '%s' not changed at step %d on shards %s (shard@its step); %s"
        % (group, run_id, step, refused, torn), run_id=run_id, group=group, step=step,
        changed_shards=changed, refused_shards=refused)
