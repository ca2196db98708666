"""state_dict() / load_state_dict() of the drop-in optimizers: the run's full state, exported
from the server and imported back, for an exact, bit-identical resume."""

import time

from roadless import errors
from roadless.optimizer.v1 import optimizer_service_pb2 as pb

STATE_FORMAT = 1


class StateMixin:
    """Mixed into ServerOptimizer (which provides client, run_id, replica, _names, ...)."""

    def state_dict(self):
        """The run's full state, exported from the server (ExportState): z, x and the moments of
        every tensor, and every group's schedule scalars and live hyperparameters, as exact
        doubles. load_state_dict() of it continues bit-identically."""
        exported = self.client.export_state(self.run_id)
        return {
            "roadless": {
                "format_version": STATE_FORMAT,
                "run_id": self.run_id,
                "step": exported[0].header.groups[0].step,
                "names": list(self._names),
                "export": [m.SerializeToString() for m in exported],
            },
            "param_groups": [
                {k: v for k, v in g.items() if k != "params"} for g in self.param_groups
            ],
            "state": {},
        }

    def _replace_run(self, messages, header, attempts=5):
        """Replica 0: makes the run hold exactly the exported state. ImportState keeps an existing
        run (created = false, or STATE_CONFLICT / RUN_SPEC_CONFLICT when its state or spec
        differs): unless it already holds this state it is deleted and imported again. Another replica's optimizer may
        create the run anew between the delete and the import, hence the loop."""
        for _ in range(attempts):
            try:
                answer = self.client.import_state(self.run_id, messages)
                if answer.created or list(answer.status.groups) == list(header.groups):
                    return
            except errors.RoadlessError as e:
                # The run exists with another spec, or (servers that say so) other state.
                if e.reason not in ("RUN_SPEC_CONFLICT", "STATE_CONFLICT"):
                    raise
            self.client.delete_run(self.run_id)
        raise errors.RoadlessError(
            None, "run %s could not be replaced by the state in %d attempts" % (self.run_id, attempts)
        )

    def _holds(self, header):
        """Other replicas: whether the run holds the state yet (it may be gone for a moment while
        replica 0 replaces it)."""
        try:
            return list(self.status().groups) == list(header.groups)
        except errors.RunNotFound:
            return False

    def load_state_dict(self, state_dict):
        """Replaces this optimizer's run with the exported state (ImportState), then loads y (x
        in eval mode) into the parameters. Every replica calls it with the same dict: replica 0
        replaces the run, the others wait (up to the client's deadline) until the run holds the
        state; then every replica continues from the saved step, bit-identically."""
        rl = state_dict["roadless"]
        if rl["format_version"] != STATE_FORMAT or rl["names"] != self._names:
            raise ValueError("this state_dict belongs to another model or format")
        messages = [pb.ExportStateResponse.FromString(b) for b in rl["export"]]
        header = messages[0].header
        if self.replica == 0:
            self._replace_run(messages, header)
        else:
            give_up = time.monotonic() + self.client.options.deadline
            while not self._holds(header):
                if time.monotonic() > give_up:
                    raise errors.RoadlessError(None, "run %s never held the state" % self.run_id)
                time.sleep(0.05)
        for g, saved in zip(self.param_groups, state_dict.get("param_groups", [])):
            for k, v in saved.items():
                if k not in ("params", "train_mode", "name"):
                    g[k] = v
            self._sent_hp[g["name"]] = self._hyperparameters(g).SerializeToString()
        for lane in self._lanes:
            lane.reset()
        self._retained = {}
        self._load_current()
