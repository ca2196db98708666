"""A drop-in optimizer's run over S optimizer servers (``targets=``; the Python side of the Java
``ShardedSession``): one lane (Train stream, shared memory) per shard, pushes to all shards in
parallel, y put together whole before it reaches the parameters, one step counter.

- A step is complete when every shard answered it; the parameters never hold parts of two steps.
- A shard that is down (UNAVAILABLE, also after the client's own retries) is waited for, up to
  ``unavailable_wait`` seconds; the other shards' pushes are idempotent, so nothing is torn.
- A shard that came back from an older snapshot (step j below the run's k) is brought to k by
  this replica re-pushing its kept gradients of steps j..k-1 (``resume_window`` of them); every
  replica does the same, so the shard replays exactly what it applied before. A shard further
  behind fails the step with FAILED_PRECONDITION (restore the run with load_state_dict).
- A hyperparameter change goes to every shard holding the group at the replica's step
  (``expected_step``); a shard that came back behind is first brought forward.
"""

import logging
import time

import grpc
import numpy as np

from roadless import errors
from roadless.sharded import ShardedClient, refusal
from roadless.torch._lane import Lane

LOG = logging.getLogger(__name__)


def _is_unavailable(e):
    return e.code == grpc.StatusCode.UNAVAILABLE


class ShardingMixin:
    """Mixed into ServerOptimizer (which provides client, run_id, replica, _names, _y, ...)."""

    def _make_lanes(self):
        if isinstance(self.client, ShardedClient):
            self._plan = self.client.plan
            self._lanes, self._into = [], []
            for s, shard in enumerate(self._plan.shards):
                sizes = [p.length for p in shard.pieces]
                self._lanes.append(Lane(self.client.shards[s], self.run_id, self.replica,
                                        self._dtype, shard.names, sizes))
                # y's parts land in self._y (views), reaching the parameters once all answered.
                self._into.append({p.name: self._y[self._names[p.tensor]][p.start:p.stop]
                                   for p in shard.pieces})
        else:
            self._lanes = [Lane(self.client, self.run_id, self.replica, self._dtype,
                                self._names, self._sizes)]

    @property
    def shards(self):
        """S: how many optimizer servers hold this run."""
        return len(self._lanes)

    def _push_sharded(self, step, gradient):
        for t, g in enumerate(gradient):
            if not np.isfinite(g).all():
                # Refused before any shard sees it: one shard refusing its part while the
                # others applied theirs would tear the step.
                at = int(np.flatnonzero(~np.isfinite(g))[0])
                raise errors.BY_REASON["NON_FINITE_GRADIENT"](
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "tensor '%s' element %d is %s; no shard saw it" % (self._names[t], at, g[at]),
                    "NON_FINITE_GRADIENT", {"tensor": self._names[t], "element": str(at)},
                    errors.DOMAIN)
        parts = self._plan.split(gradient)
        answers = self.client.on_every_shard(lambda s: self._push_shard(s, step, parts[s]))
        steps = sorted({a.parameters.step for a in answers})
        if len(steps) != 1:
            raise errors.RoadlessError(grpc.StatusCode.ABORTED, "run %s shards answered steps %s"
                                       % (self.run_id, [a.parameters.step for a in answers]))
        self._copy_into_params(self._y)
        self._k = steps[0]

    def _push_shard(self, s, step, part):
        """Shard s's answer to this replica's push of ``step``, bringing it forward first if it
        came back behind, waiting for it while it is down."""
        lane = self._lanes[s]
        give_up = time.monotonic() + self._unavailable_wait
        while True:
            try:
                try:
                    return lane.push(step, part, self._into[s])
                except errors.StepInFuture:
                    self._catch_up(s, step)
            except errors.RoadlessError as e:
                if not _is_unavailable(e) or time.monotonic() > give_up:
                    raise
                LOG.info("replica %d: shard %d of run %s unavailable; still retrying",
                         self.replica, s, self.run_id)

    def _catch_up(self, s, k):
        """Brings shard s to step k by re-pushing this replica's kept gradients."""
        lane = self._lanes[s]
        j = lane.client.run_status(self.run_id).step
        while j < k:
            if not self._replayable(j):
                raise errors.RoadlessError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    "shard %d of run %s is at step %d and replica %d no longer keeps that push "
                    "(resume_window=%d); restore the run with load_state_dict"
                    % (s, self.run_id, j, self.replica, self._resume_window))
            LOG.info("replica %d: shard %d of run %s is at step %d, the run at %d; pushing "
                     "again", self.replica, s, self.run_id, j, k)
            kept = self._plan.split(
                [g.detach().to("cpu", g.dtype).reshape(-1).numpy() for g, _ in self._retained[j]])
            j = lane.push(j, kept[s], self._into[s]).parameters.step

    def _update_sharded(self, group, change):
        k = self._k
        for attempt in range(4):
            outcomes = self.client.hyperparameter_outcomes(self.run_id, group, change, k)
            behind = [o for o in outcomes if not o[1] and o[2] < k]
            ahead = any(not o[1] and o[2] > k for o in outcomes)
            if ahead or (behind and attempt == 3):
                raise refusal(self.run_id, group, k, outcomes)
            if not behind:
                return
            for o in behind:
                self._catch_up(o[0], k)
