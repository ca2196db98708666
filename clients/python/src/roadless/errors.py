"""Typed errors: every non-OK status becomes a RoadlessError subclass chosen by the
``google.rpc.ErrorInfo`` reason the server attached (domain ``roadless.dev``).

Branch on the class or on ``.reason``, never on the message text::

    try:
        opt.step()
    except roadless.errors.NonFiniteGradient as e:
        print(e.reason, e.metadata)

Errors without ErrorInfo (the transport, a deadline) get a class from their status code:
``Unavailable``, ``DeadlineExceeded``, or ``RoadlessError`` itself.
"""

import re

import grpc
from google.rpc import error_details_pb2, status_pb2

DOMAIN = "roadless.dev"


class RoadlessError(Exception):
    """A refused or failed call. ``code`` is the grpc.StatusCode, ``reason`` the ErrorInfo reason
    (``"STEP_STALE"``, ...; empty when the server sent none), ``metadata`` its map."""

    reason_name = ""

    def __init__(self, code, message, reason="", metadata=None, domain=""):
        super().__init__("%s %s: %s" % (code.name if code else "?", reason or "-", message))
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata = dict(metadata or {})

    @property
    def retryable(self):
        """True when retrying the same call with backoff is safe and may succeed."""
        return self.code == grpc.StatusCode.UNAVAILABLE


# Reasons from roadless.common.v1.ErrorReason (without the ERROR_REASON_ prefix).
_REASONS = [
    "RUN_NOT_FOUND", "RUN_SPEC_CONFLICT", "INVALID_RUN_SPEC", "INVALID_HYPERPARAMETER",
    "INVALID_RUN_ID", "GROUP_NOT_FOUND", "INITIAL_VALUES_MISSING", "INITIAL_VALUES_CONFLICT",
    "NON_FINITE_VALUE", "UNKNOWN_TENSOR", "MISSING_TENSOR", "SIZE_MISMATCH", "CHUNK_OVERLAP",
    "CHUNK_MISSING", "DTYPE_MISMATCH", "STREAM_TRUNCATED", "STREAM_OUT_OF_ORDER",
    "MESSAGE_TOO_LARGE", "NON_FINITE_GRADIENT", "REPLICA_OUT_OF_RANGE", "STEP_IN_FUTURE",
    "STEP_STALE", "STEP_MISMATCH", "SHARED_MEMORY_UNAVAILABLE", "SHARED_MEMORY_UNKNOWN",
    "SHARED_MEMORY_MISUSE", "INVALID_STATE", "SERVER_NOT_READY", "INTERNAL", "TRAINER_BUSY",
    "TRAINER_NOT_CONFIGURED", "INVALID_MODEL_SPEC", "DATASET_UNAVAILABLE",
    "OPTIMIZER_UNAVAILABLE", "CHECKPOINT_NOT_FOUND", "CHECKPOINT_EXISTS",
    "INVALID_CHECKPOINT_NAME", "CHECKPOINT_CORRUPTED", "CHECKPOINT_STEP_MOVED",
    "TRAINER_UNAVAILABLE", "TRAINERS_NOT_CONFIGURED", "CHECKPOINT_KIND_MISMATCH",
    "STORAGE_UNAVAILABLE", "INVALID_CHECKPOINT_REQUEST", "RUN_FAILED", "INVALID_ARGUMENT",
    "PUSH_CONFLICT", "STEP_OUT_OF_RANGE", "STATE_CONFLICT", "MEMORY_BUDGET_EXCEEDED",
    "CONCURRENCY_LIMIT", "STREAM_IDLE",
]


def _class_name(reason):
    return "".join(w.capitalize() for w in reason.split("_"))


BY_REASON = {}
for _r in _REASONS:
    BY_REASON[_r] = type(_class_name(_r), (RoadlessError,), {"reason_name": _r})
    globals()[_class_name(_r)] = BY_REASON[_r]


class Unavailable(RoadlessError):
    """UNAVAILABLE without a Roadless reason: the server is down or unreachable. Safe to retry."""


class DeadlineExceeded(RoadlessError):
    """The call's deadline passed."""


_BY_CODE = {grpc.StatusCode.UNAVAILABLE: Unavailable, grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded}


def reason_of(error_info_reason):
    """Normalises "ERROR_REASON_STEP_STALE" and "STEP_STALE" to "STEP_STALE"."""
    return re.sub(r"^ERROR_REASON_", "", error_info_reason or "")


def from_rpc_error(e):
    """The typed exception for a grpc.RpcError (raised by a call or a stream)."""
    code = e.code() if hasattr(e, "code") else None
    message = e.details() if hasattr(e, "details") else str(e)
    reason, domain, metadata = "", "", {}
    trailers = e.trailing_metadata() if hasattr(e, "trailing_metadata") else None
    for key, value in trailers or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, domain, metadata = reason_of(info.reason), info.domain, dict(info.metadata)
    cls = BY_REASON.get(reason) or _BY_CODE.get(code, RoadlessError)
    return cls(code, message, reason, metadata, domain)
