package dev.roadless.common.error;

import com.google.protobuf.Any;
import com.google.rpc.ErrorInfo;
import dev.roadless.proto.common.v1.ErrorReason;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.util.Map;

/**
 * The one place where failures become gRPC statuses. Every status carries {@code
 * google.rpc.ErrorInfo} with domain {@value #DOMAIN} and the reason's name without its {@code
 * ERROR_REASON_} prefix.
 */
public final class Errors {
  public static final String DOMAIN = "roadless.dev";
  private static final String PREFIX = "ERROR_REASON_";

  private Errors() {}

  /** The status code that goes with each reason, as documented in error_reason.proto. */
  public static Status.Code codeOf(ErrorReason reason) {
    return switch (reason) {
      case ERROR_REASON_RUN_NOT_FOUND,
          ERROR_REASON_GROUP_NOT_FOUND,
          ERROR_REASON_CHECKPOINT_NOT_FOUND ->
          Status.Code.NOT_FOUND;
      case ERROR_REASON_RUN_SPEC_CONFLICT,
          ERROR_REASON_INITIAL_VALUES_CONFLICT,
          ERROR_REASON_CHECKPOINT_EXISTS,
          ERROR_REASON_PUSH_CONFLICT,
          ERROR_REASON_STATE_CONFLICT ->
          Status.Code.ALREADY_EXISTS;
      case ERROR_REASON_INITIAL_VALUES_MISSING,
          ERROR_REASON_RUN_FAILED,
          ERROR_REASON_STEP_IN_FUTURE,
          ERROR_REASON_SHARED_MEMORY_UNAVAILABLE,
          ERROR_REASON_SHARED_MEMORY_UNKNOWN,
          ERROR_REASON_TRAINER_BUSY,
          ERROR_REASON_TRAINER_NOT_CONFIGURED,
          ERROR_REASON_DATASET_UNAVAILABLE,
          ERROR_REASON_TRAINERS_NOT_CONFIGURED,
          ERROR_REASON_CHECKPOINT_KIND_MISMATCH,
          ERROR_REASON_STORAGE_UNAVAILABLE ->
          Status.Code.FAILED_PRECONDITION;
      case ERROR_REASON_STEP_STALE,
          ERROR_REASON_STEP_MISMATCH,
          ERROR_REASON_PUSH_VOIDED,
          ERROR_REASON_CHECKPOINT_STEP_MOVED ->
          Status.Code.ABORTED;
      case ERROR_REASON_MESSAGE_TOO_LARGE,
          ERROR_REASON_MEMORY_BUDGET_EXCEEDED,
          ERROR_REASON_CONCURRENCY_LIMIT ->
          Status.Code.RESOURCE_EXHAUSTED;
      case ERROR_REASON_STREAM_IDLE -> Status.Code.DEADLINE_EXCEEDED;
      case ERROR_REASON_UNAUTHENTICATED -> Status.Code.UNAUTHENTICATED;
      case ERROR_REASON_PERMISSION_DENIED -> Status.Code.PERMISSION_DENIED;
      case ERROR_REASON_CHECKPOINT_CORRUPTED -> Status.Code.DATA_LOSS;
      case ERROR_REASON_SERVER_NOT_READY,
          ERROR_REASON_OPTIMIZER_UNAVAILABLE,
          ERROR_REASON_TRAINER_UNAVAILABLE ->
          Status.Code.UNAVAILABLE;
      case ERROR_REASON_INTERNAL, ERROR_REASON_UNSPECIFIED, UNRECOGNIZED -> Status.Code.INTERNAL;
      default -> Status.Code.INVALID_ARGUMENT;
    };
  }

  /** The ErrorInfo reason string of a reason: its name without the enum prefix. */
  public static String reasonName(ErrorReason reason) {
    String name = reason.name();
    return name.startsWith(PREFIX) ? name.substring(PREFIX.length()) : name;
  }

  /** Converts any throwable into a status exception carrying ErrorInfo. */
  public static StatusRuntimeException toStatus(Throwable t) {
    if (t instanceof StatusRuntimeException sre) {
      return sre;
    }
    if (t instanceof RoadlessException re) {
      return build(codeOf(re.reason()), re.reason(), re.getMessage(), re.metadata());
    }
    // Anything else is a broken invariant on our side; never leak a Java stack trace.
    return build(
        Status.Code.INTERNAL,
        ErrorReason.ERROR_REASON_INTERNAL,
        "internal error: " + t.getClass().getSimpleName() + ": " + t.getMessage(),
        Map.of());
  }

  static StatusRuntimeException build(
      Status.Code code, ErrorReason reason, String message, Map<String, String> metadata) {
    ErrorInfo info =
        ErrorInfo.newBuilder()
            .setDomain(DOMAIN)
            .setReason(reasonName(reason))
            .putAllMetadata(metadata)
            .build();
    com.google.rpc.Status status =
        com.google.rpc.Status.newBuilder()
            .setCode(code.value())
            .setMessage(message == null ? "" : message)
            .addDetails(Any.pack(info))
            .build();
    return StatusProto.toStatusRuntimeException(status);
  }

  /** Reads the ErrorInfo of a status exception, or null when it carries none. */
  public static ErrorInfo errorInfo(Throwable t) {
    com.google.rpc.Status status = StatusProto.fromThrowable(t);
    if (status == null) {
      return null;
    }
    for (Any detail : status.getDetailsList()) {
      if (detail.is(ErrorInfo.class)) {
        try {
          return detail.unpack(ErrorInfo.class);
        } catch (com.google.protobuf.InvalidProtocolBufferException e) {
          return null;
        }
      }
    }
    return null;
  }
}
