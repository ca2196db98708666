"""The v1 optimizer API with deadlines, retries with backoff on UNAVAILABLE, and typed errors.

Every call has a deadline (ClientOptions.deadline; Train pushes wait at most wait_deadline for
the step). UNAVAILABLE (the server is down, restarting or not ready) is retried with jittered
exponential backoff for up to retry_for seconds: every RPC of the API is safe to retry (pushes
are idempotent on (run, replica, step)). Any other failure raises its roadless.errors class.
"""

import dataclasses
import queue
import random
import threading
import time

import grpc
import numpy as np

from roadless import credentials, errors
from roadless._tensors import DEFAULT_CHUNK_BYTES, FLOAT32, chunks, element_count, put_chunk
from roadless.optimizer.v1 import optimizer_service_pb2 as pb
from roadless.optimizer.v1 import optimizer_service_pb2_grpc as pb_grpc
from roadless.optimizer.v1 import run_pb2

TRAIN, EVAL, BASE = run_pb2.SEQUENCE_TRAIN, run_pb2.SEQUENCE_EVAL, run_pb2.SEQUENCE_BASE
MAX_MESSAGE_BYTES = 8 << 20


@dataclasses.dataclass(frozen=True)
class ClientOptions:
    """Timeouts in seconds."""

    deadline: float = 60.0  # each unary call, each parameter or state stream
    wait_deadline: float = 600.0  # a Train push, waiting for the other replicas and the step
    retry_for: float = 120.0  # how long UNAVAILABLE is retried before it is raised
    initial_backoff: float = 0.05
    max_backoff: float = 2.0
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    shared_memory: bool = True  # use AttachSharedMemory on the server's host


CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.http2.lookahead_bytes", 8 << 20),
)


def channel_for(target, settings=None):
    """A channel to ``target`` with the message limits the API needs, secured by ``settings``
    (a roadless.credentials.Settings; default: from the environment, see that module)."""
    return credentials.channel(target, settings or credentials.Settings.resolve(), CHANNEL_OPTIONS)


class OptimizerClient:
    """A client of roadless.optimizer.v1.OptimizerService. Give it a target ("host:port") and it
    owns the channel (close() closes it), or give it a channel that you own.

    With a target: ``token=`` (else $ROADLESS_TOKEN) is sent as ``authorization: Bearer`` on
    every call; ``tls_ca_file=``, and ``tls_cert_file=`` with ``tls_key_file=`` for mutual TLS,
    select TLS; ``plaintext=True`` asks for cleartext. Without TLS settings a loopback target is
    reached in plaintext and any other with TLS against the system's roots
    (roadless.credentials has the whole contract)."""

    def __init__(self, target=None, channel=None, options=None, token=None, tls_ca_file=None,
                 tls_cert_file=None, tls_key_file=None, plaintext=None):
        if (target is None) == (channel is None):
            raise ValueError("give exactly one of target and channel")
        given = (token, tls_ca_file, tls_cert_file, tls_key_file, plaintext)
        if channel is not None and any(v is not None for v in given):
            raise ValueError("credentials go with a target; a given channel carries its own")
        self.options = options or ClientOptions()
        self._owned = channel is None
        if channel is None:
            channel = channel_for(target, credentials.Settings.resolve(*given))
        self.channel = channel
        self.stub = pb_grpc.OptimizerServiceStub(self.channel)

    def close(self):
        if self._owned:
            self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- retries ----------------------------------------------------------------------------

    def call(self, attempt):
        """Runs attempt() until it succeeds, retrying UNAVAILABLE with backoff for retry_for
        seconds; raises the typed error otherwise."""
        o = self.options
        give_up = time.monotonic() + o.retry_for
        backoff = o.initial_backoff
        while True:
            try:
                return attempt()
            except grpc.RpcError as e:
                err = errors.from_rpc_error(e)
            except errors.RoadlessError as e:
                err = e
            if not err.retryable or time.monotonic() + backoff > give_up:
                raise err
            time.sleep(backoff * (0.5 + random.random() / 2))
            backoff = min(backoff * 2, o.max_backoff)

    def _unary(self, method, request):
        return self.call(lambda: method(request, timeout=self.options.deadline))

    # --- runs ------------------------------------------------------------------------------

    def create_run(self, run_id, spec):
        """CreateRun; idempotent. Returns CreateRunResponse (created, status)."""
        return self._unary(self.stub.CreateRun, pb.CreateRunRequest(run_id=run_id, spec=spec))

    def run_status(self, run_id):
        return self._unary(self.stub.GetRunStatus, pb.GetRunStatusRequest(run_id=run_id)).status

    def list_runs(self):
        return list(self._unary(self.stub.ListRuns, pb.ListRunsRequest()).run_ids)

    def delete_run(self, run_id):
        return self._unary(self.stub.DeleteRun, pb.DeleteRunRequest(run_id=run_id)).deleted

    def update_hyperparameters(self, run_id, group, hyperparameters, expected_step=None):
        """Changes a group's hyperparameters; with ``expected_step`` (also 0) only at that step."""
        request = pb.UpdateHyperparametersRequest(
            run_id=run_id, group=group, hyperparameters=hyperparameters
        )
        if expected_step is not None:
            request.expected_step = expected_step
        return self._unary(self.stub.UpdateHyperparameters, request).group

    def attach_shared_memory(self, run_id, replica, proof=b""):
        request = pb.AttachSharedMemoryRequest(run_id=run_id, replica=replica, locality_proof=proof)
        return self._unary(self.stub.AttachSharedMemory, request)

    # --- tensors ---------------------------------------------------------------------------

    def upload_initial_values(self, run_id, names, arrays):
        """Uploads every tensor's initial value (flat float32 arrays in RunSpec order)."""
        total = sum(int(np.size(a)) for a in arrays)

        def requests():
            yield pb.UploadInitialValuesRequest(header=pb.UploadHeader(run_id=run_id))
            for c in chunks(names, arrays, FLOAT32, self.options.chunk_bytes):
                yield pb.UploadInitialValuesRequest(chunk=c)
            yield pb.UploadInitialValuesRequest(commit=pb.StreamCommit(total_elements=total))

        return self.call(
            lambda: self.stub.UploadInitialValues(requests(), timeout=self.options.deadline)
        ).stored

    def push_gradients(self, run_id, replica, step, names, arrays, dtype=FLOAT32):
        """PushGradients (without waiting for the step). Returns PushGradientsResponse."""
        total = sum(int(np.size(a)) for a in arrays)

        def requests():
            header = pb.GradientHeader(run_id=run_id, replica=replica, step=step, dtype=dtype)
            yield pb.PushGradientsRequest(header=header)
            for c in chunks(names, arrays, dtype, self.options.chunk_bytes):
                yield pb.PushGradientsRequest(chunk=c)
            yield pb.PushGradientsRequest(commit=pb.StreamCommit(total_elements=total))

        return self.call(lambda: self.stub.PushGradients(requests(), timeout=self.options.deadline))

    def get_parameters(self, run_id, sequence, min_step=0, into=None, deadline=None):
        """(step, {name: flat float32 array}) of one sequence, every tensor from one step.
        ``into`` (name -> flat float32 array) receives the values in place when given."""

        def attempt():
            request = pb.GetParametersRequest(run_id=run_id, sequence=sequence, min_step=min_step)
            stream = self.stub.GetParameters(request, timeout=deadline or self.options.deadline)
            out, step = into, None
            for m in stream:
                kind = m.WhichOneof("item")
                if kind == "header":
                    step = m.header.step
                    if out is None:
                        out = {
                            t.name: np.empty(element_count(t.shape), np.float32)
                            for t in m.header.tensors
                        }
                elif kind == "chunk":
                    put_chunk(m.chunk, out)
            return step, out

        return self.call(attempt)

    # --- state -----------------------------------------------------------------------------

    def export_state(self, run_id):
        """ExportState: the run's full state as a list of ExportStateResponse messages (a
        header, the chunks, the end), everything an exact resume needs."""
        return self.call(
            lambda: list(
                self.stub.ExportState(
                    pb.ExportStateRequest(run_id=run_id), timeout=self.options.deadline
                )
            )
        )

    def import_state(self, run_id, exported):
        """ImportState of exported messages as run ``run_id``. Returns ImportStateResponse."""

        def requests():
            for m in exported:
                kind = m.WhichOneof("item")
                if kind == "header":
                    header = pb.StateHeader()
                    header.CopyFrom(m.header)
                    header.run_id = run_id
                    yield pb.ImportStateRequest(header=header)
                elif kind == "chunk":
                    yield pb.ImportStateRequest(chunk=m.chunk)
                else:
                    yield pb.ImportStateRequest(commit=m.end)

        return self.call(lambda: self.stub.ImportState(requests(), timeout=self.options.deadline))

    def open_train(self):
        """A Train stream (one per replica for the whole loop)."""
        return TrainStream(self.stub)


class TrainStream:
    """One replica's Train stream. step() sends one push and reads the answer; a failure marks
    the stream broken (open a new one and push again: pushes are idempotent)."""

    def __init__(self, stub):
        self._outbox = queue.SimpleQueue()
        self._call = stub.Train(iter(self._outbox.get, None))
        self.broken = False

    def step(self, requests, into, wait_deadline):
        """Sends the push's messages; returns the answer's TrainStepHeader after writing y's
        chunks (if any) into ``into`` (name -> flat float32 array)."""
        for r in requests:
            self._outbox.put(r)
        expired = threading.Event()

        def expire():
            expired.set()
            self._call.cancel()

        timer = threading.Timer(wait_deadline, expire)
        timer.daemon = True
        timer.start()
        try:
            header = None
            for m in self._call:
                kind = m.WhichOneof("item")
                if kind == "header":
                    header = m.header
                elif kind == "chunk":
                    put_chunk(m.chunk, into)
                else:
                    return header
            self.broken = True
            raise errors.Unavailable(grpc.StatusCode.UNAVAILABLE, "Train stream ended")
        except grpc.RpcError as e:
            self.broken = True
            if expired.is_set():
                raise errors.DeadlineExceeded(
                    grpc.StatusCode.DEADLINE_EXCEEDED, "no answer in %.0f s" % wait_deadline
                ) from None
            raise
        finally:
            timer.cancel()

    def close(self):
        self._outbox.put(None)
        self._call.cancel()
