package dev.roadless.checkpoint.remote;

import com.google.rpc.ErrorInfo;
import dev.roadless.common.error.Errors;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.proto.common.v1.ErrorReason;
import io.github.resilience4j.circuitbreaker.CallNotPermittedException;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.function.Supplier;

/**
 * Error translation for calls to the other Roadless services (which retry through the client SDK's
 * {@link dev.roadless.optimizer.client.Resilience}): what finally failed becomes this service's
 * error reasons, so a caller of the checkpoint service learns which dependency failed and whether
 * to retry.
 */
public final class Upstream {
  private Upstream() {}

  /**
   * Runs a call to the optimizer service. Its refusals (with ErrorInfo: RUN_NOT_FOUND, ...) pass
   * through unchanged; unavailability becomes OPTIMIZER_UNAVAILABLE.
   */
  public static <T> T optimizer(String target, Supplier<T> call) {
    try {
      return call.get();
    } catch (CallNotPermittedException e) {
      throw unavailable(
          ErrorReason.ERROR_REASON_OPTIMIZER_UNAVAILABLE, "optimizer " + target, e, null);
    } catch (StatusRuntimeException e) {
      String reason = reason(e);
      if ((reason.isEmpty() || reason.equals("SERVER_NOT_READY"))
          && e.getStatus().getCode() == Status.Code.UNAVAILABLE) {
        throw unavailable(
            ErrorReason.ERROR_REASON_OPTIMIZER_UNAVAILABLE, "optimizer " + target, e, null);
      }
      throw e;
    }
  }

  /**
   * Translates what finally failed in a call to trainer {@code index}: its refusals keep their
   * reason and gain {@code replica}; unavailability and timeouts become TRAINER_UNAVAILABLE.
   */
  static RuntimeException trainer(int index, String target, RuntimeException failure) {
    String who = "trainer " + index + " (" + target + ")";
    if (failure instanceof CallNotPermittedException) {
      return unavailable(ErrorReason.ERROR_REASON_TRAINER_UNAVAILABLE, who, failure, index);
    }
    if (!(failure instanceof StatusRuntimeException e)) {
      return failure;
    }
    ErrorInfo info = Errors.errorInfo(e);
    String reason = info == null ? "" : info.getReason();
    Status.Code code = e.getStatus().getCode();
    if ((reason.isEmpty() || reason.equals("SERVER_NOT_READY"))
        && (code == Status.Code.UNAVAILABLE || code == Status.Code.DEADLINE_EXCEEDED)) {
      return unavailable(ErrorReason.ERROR_REASON_TRAINER_UNAVAILABLE, who, e, index);
    }
    if (info == null) {
      return e;
    }
    ErrorReason r;
    try {
      r = ErrorReason.valueOf("ERROR_REASON_" + reason);
    } catch (IllegalArgumentException unknown) {
      r = ErrorReason.ERROR_REASON_INTERNAL;
    }
    RoadlessException.Builder b =
        RoadlessException.of(r, who + " refused: " + e.getStatus().getDescription());
    info.getMetadataMap().forEach(b::with);
    return b.with("replica", index).build();
  }

  /** The ErrorInfo reason of a failure, or "". */
  static String reason(Throwable t) {
    ErrorInfo info = Errors.errorInfo(t);
    return info == null ? "" : info.getReason();
  }

  private static RoadlessException unavailable(
      ErrorReason reason, String who, Throwable cause, Integer replica) {
    String detail =
        cause instanceof StatusRuntimeException e
            ? e.getStatus().getCode() + " " + e.getStatus().getDescription()
            : cause.toString();
    RoadlessException.Builder b = RoadlessException.of(reason, who + " is unavailable: " + detail);
    if (replica != null) {
      b.with("replica", replica);
    }
    return b.build();
  }
}
