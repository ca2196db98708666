"""A PyTorch trainer behind the ``roadless.trainer.v1`` control API, so that the checkpoint
service saves eval checkpoints of Python trainers exactly as it does for Java ones: it asks
every replica for BatchNorm statistics at x (ComputeBatchNormStatistics) and for hold-out
metrics (Evaluate), merges the replicas' answers and writes x with the merged statistics.

    control = TrainerControl(model, opt, train_batch=..., holdout=(images, labels))
    server, port = serve(control)          # then train as usual; the service calls in

Both calls work on a copy of the model loaded with the requested sequence from the optimizer,
so training may continue meanwhile. The script drives training itself: Start refuses
(TRAINER_BUSY) and Stop has nothing to stop.
"""

import concurrent.futures
import copy
import threading

import grpc
import torch
from roadless import access, errors
from roadless.client import EVAL
from roadless.trainer.v1 import trainer_service_pb2 as tpb
from roadless.trainer.v1 import trainer_service_pb2_grpc as tpb_grpc

_BN = torch.nn.modules.batchnorm._BatchNorm


_Refusal, _abort = access.Refusal, access.abort


def _refusals(method):
    def wrapped(self, request, context):
        try:
            return method(self, request, context)
        except _Refusal as r:
            _abort(context, r)
        except errors.RoadlessError as e:  # the optimizer's refusal keeps its reason
            code = e.code or grpc.StatusCode.INTERNAL
            if code == grpc.StatusCode.UNAVAILABLE:
                e.reason = "OPTIMIZER_UNAVAILABLE"
            _abort(context, _Refusal(code, e.reason or "INTERNAL", e.message, **e.metadata))

    return wrapped


class TrainerControl(tpb_grpc.TrainerServiceServicer):
    """The control API of one replica. ``train_batch(data_seed, step, replica, replicas,
    batch_size)`` returns the inputs of this replica's slice of global batch ``step`` (the same
    function the training loop uses); ``holdout`` is (inputs, int64 labels); ``batch_size`` is
    this replica's training share."""

    def __init__(self, model, optimizer, train_batch, holdout, batch_size):
        self.model, self.optimizer = model, optimizer
        self.train_batch, self.holdout, self.batch_size = train_batch, holdout, batch_size
        self._lock = threading.Lock()

    # --- helpers -----------------------------------------------------------------------------

    def _model_at(self, run_id, sequence, min_step, deadline):
        if run_id != self.optimizer.run_id:
            raise _Refusal(grpc.StatusCode.NOT_FOUND, "RUN_NOT_FOUND",
                           "this trainer trains run %r" % self.optimizer.run_id, run_id=run_id)
        sequence = sequence or EVAL
        step, values = self.optimizer.client.get_parameters(
            run_id, sequence, min_step=min_step, deadline=deadline)
        with self._lock:
            model = copy.deepcopy(self.model)
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(torch.from_numpy(values[name]).view_as(p))
        return model, sequence, step

    @staticmethod
    def _layers(model):
        return [(n, m) for n, m in model.named_modules() if isinstance(m, _BN)]

    # --- RPCs --------------------------------------------------------------------------------

    @_refusals
    def ComputeBatchNormStatistics(self, request, context):
        mode = request.mode
        if mode == tpb.BATCH_NORM_STATISTICS_MODE_UNSPECIFIED:
            raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CHECKPOINT_REQUEST",
                           "mode is required", field="mode")
        batches = request.batches or 50
        size = request.batch_size or self.batch_size
        if not 1 <= batches <= 10_000 or size < 2:
            raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CHECKPOINT_REQUEST",
                           "batches 1..10000 and batch_size >= 2", field="batches")
        model, sequence, step = self._model_at(request.run_id, request.sequence,
                                               request.min_step, context.time_remaining())
        layers = self._layers(model)
        pooled = {n: [0, None, None] for n, _ in layers}  # count, mean, m2 (double, Chan)
        hooks = []
        for n, m in layers:
            if mode == tpb.BATCH_NORM_STATISTICS_MODE_EMA:
                m.momentum = request.momentum if request.HasField("momentum") else 0.1
                if request.restart:
                    m.reset_running_stats()
            elif mode == tpb.BATCH_NORM_STATISTICS_MODE_CUMULATIVE:
                m.reset_running_stats()
                m.momentum = None
            hooks.append(m.register_forward_pre_hook(
                lambda mod, inp, n=n: _pool(pooled[n], inp[0])))
        model.train()
        with torch.no_grad():
            for k in range(batches):
                model(self.train_batch(request.data_seed, k, self.optimizer.replica,
                                       self.optimizer.replicas, size))
        for h in hooks:
            h.remove()
        answer = tpb.ComputeBatchNormStatisticsResponse(
            run_id=request.run_id, sequence=sequence, step=step, mode=mode, batches=batches,
            replica=self.optimizer.replica)
        for n, m in layers:
            count, mean, m2 = pooled[n]
            if mode == tpb.BATCH_NORM_STATISTICS_MODE_PRECISE:
                m.running_mean.copy_(torch.from_numpy(mean))
                m.running_var.copy_(torch.from_numpy(m2 / (count - 1)))
                m.num_batches_tracked.fill_(batches)
            else:
                mean = m.running_mean.double().numpy()
                m2 = m.running_var.double().numpy() * (count - 1)
            answer.layers.add(layer=n, count=count, mean=mean.tolist(), m2=m2.tolist(),
                              num_batches_tracked=int(m.num_batches_tracked))
        return answer

    @_refusals
    def Evaluate(self, request, context):
        if request.use_training_statistics and len(request.statistics):
            raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CHECKPOINT_REQUEST",
                           "statistics with use_training_statistics", field="statistics")
        model, sequence, step = self._model_at(request.run_id, request.sequence,
                                               request.min_step, context.time_remaining())
        if not request.use_training_statistics:
            given = {s.layer: s for s in request.statistics}
            for n, m in self._layers(model):
                if n not in given:
                    raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT, "MISSING_TENSOR",
                                   "no statistics for BatchNorm layer " + n, tensor=n)
                s = given[n]
                if len(s.mean) != m.num_features or len(s.m2) != m.num_features:
                    raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT, "SIZE_MISMATCH",
                                   "layer %s has %d channels" % (n, m.num_features), tensor=n)
                m.running_mean.copy_(torch.tensor(list(s.mean), dtype=torch.float64))
                m.running_var.copy_(torch.tensor(list(s.m2), dtype=torch.float64) / (s.count - 1))
        model.eval()
        x, y = self.holdout
        if request.max_examples:
            x, y = x[: request.max_examples], y[: request.max_examples]
        size = request.batch_size or 500
        loss, correct = 0.0, 0
        with torch.no_grad():
            for at in range(0, len(x), size):
                logits = model(x[at : at + size])
                loss += torch.nn.functional.cross_entropy(
                    logits, y[at : at + size], reduction="sum").item()
                correct += int((logits.argmax(1) == y[at : at + size]).sum())
        return tpb.EvaluateResponse(sequence=sequence, step=step, loss=loss / len(x),
                                    accuracy=correct / len(x), examples=len(x), correct=correct)

    @_refusals
    def GetStatus(self, request, context):
        return tpb.GetStatusResponse(status=tpb.TrainerStatus(
            run_id=self.optimizer.run_id, replica=self.optimizer.replica,
            replicas=self.optimizer.replicas, step=self.optimizer.step_count))

    @_refusals
    def Start(self, request, context):
        raise _Refusal(grpc.StatusCode.FAILED_PRECONDITION, "TRAINER_BUSY",
                       "a Python trainer is driven by its own script")

    @_refusals
    def Stop(self, request, context):
        return tpb.StopResponse(stopped=False)


def _pool(acc, x):
    """Merges one batch's per-channel count, mean and M2 into acc, in double (Chan et al.)."""
    x = x.detach().double().transpose(0, 1).reshape(x.shape[1], -1)
    n = x.shape[1]
    mean = x.mean(1)
    m2 = ((x - mean[:, None]) ** 2).sum(1)
    mean, m2 = mean.numpy(), m2.numpy()
    if acc[1] is None:
        acc[:] = [n, mean, m2]
        return
    total = acc[0] + n
    delta = mean - acc[1]
    acc[1] = acc[1] + delta * n / total
    acc[2] = acc[2] + m2 + delta ** 2 * acc[0] * n / total
    acc[0] = total


# grpc.health.v1 messages, hand-encoded: HealthCheckResponse is one varint field (1: status),
# and the request's only field (1: service) is a length-delimited string. grpcio's own health
# package is not among the wheels this project may rely on.
_SERVING, _SERVICE_UNKNOWN = b"\x08\x01", b"\x08\x03"
_HEALTHY = ("", tpb.DESCRIPTOR.services_by_name["TrainerService"].full_name)


def _health_service(request):
    if not request:
        return ""
    if request[0] != 0x0A or len(request) < 2 or request[1] >= 0x80:
        return None  # not the one short string field this service understands
    return request[2:2 + request[1]].decode("utf-8", "replace")


def _health_status(request):
    return _SERVING if _health_service(request) in _HEALTHY else _SERVICE_UNKNOWN


def _health_check(request, context):
    if _health_status(request) is _SERVICE_UNKNOWN:
        context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
    return _SERVING


def _health_watch(request, context):
    yield _health_status(request)
    done = threading.Event()
    context.add_callback(done.set)
    done.wait()  # the status never changes while the server runs; the stream ends with the call


def _health_handler():
    same = lambda b: b  # noqa: E731 (bytes in, bytes out: the messages are encoded above)
    return grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
        "Check": grpc.unary_unary_rpc_method_handler(
            _health_check, request_deserializer=same, response_serializer=same),
        "Watch": grpc.unary_stream_rpc_method_handler(
            _health_watch, request_deserializer=same, response_serializer=same),
    })


def serve(control, port=0, host="127.0.0.1", *, tls_cert_file=None, tls_key_file=None,
          tls_client_ca_file=None, access_file=None, plaintext=None, tls_reload_seconds=30.0):
    """Serves ``control`` on host:port (0 picks one), with the standard gRPC health service
    reporting SERVING (the checkpoint service waits for it at start-up); returns (server, bound
    port).

    Like the Java services it serves TLS (``tls_cert_file``, ``tls_key_file``; with
    ``tls_client_ca_file`` every client must show a certificate from that CA) and authorizes
    every trainer call against ``access_file`` (:mod:`roadless.access`: the Java services' format
    and role table). Plaintext only when asked for: ``plaintext=True`` (then ``access_file`` is
    optional). Each argument falls back to ``ROADLESS_TLS_CERT``, ``ROADLESS_TLS_KEY``,
    ``ROADLESS_TLS_CLIENT_CA``, ``ROADLESS_ACCESS_FILE``, ``ROADLESS_PLAINTEXT``. Bad settings
    raise ValueError (a missing file: OSError) before anything listens."""
    tls, control_access = access.server_options(plaintext, tls_cert_file, tls_key_file,
                                                tls_client_ca_file, access_file)
    if tls is not None:
        tls.reload_seconds = tls_reload_seconds
    interceptors = ()
    if control_access is not None:
        own_run = lambda request: [control.optimizer.run_id]  # noqa: E731 (Stop, GetStatus)
        interceptors = (access.Authorization(control_access, access.TRAINER_POLICY, {
            "/roadless.trainer.v1.TrainerService/Stop": own_run,
            "/roadless.trainer.v1.TrainerService/GetStatus": own_run}),)
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=8),
                         interceptors=interceptors)
    tpb_grpc.add_TrainerServiceServicer_to_server(control, server)
    server.add_generic_rpc_handlers((_health_handler(),))
    address = "%s:%d" % (host, port)
    bound = (server.add_insecure_port(address) if tls is None
             else server.add_secure_port(address, tls.credentials()))
    server.start()
    return server, bound


__all__ = ["TrainerControl", "serve"]
