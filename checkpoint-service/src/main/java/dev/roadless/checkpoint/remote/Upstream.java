package dev.roadless.checkpoint.remote;

import com.google.rpc.ErrorInfo;
import dev.roadless.common.error.Errors;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.proto.common.v1.ErrorReason;
import io.github.resilience4j.circuitbreaker.CallNotPermittedException;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import io.github.resilience4j.core.IntervalFunction;
import io.github.resilience4j.retry.Retry;
import io.github.resilience4j.retry.RetryConfig;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.function.Supplier;

/**
 * Resilience and error translation for calls to the other Roadless services: Resilience4j retries
 * of UNAVAILABLE with exponential backoff and jitter behind a circuit breaker (as the optimizer's
 * own client does), and the mapping of what finally failed to this service's error reasons, so a
 * caller of the checkpoint service learns which dependency failed and whether to retry.
 */
public final class Upstream {
  private Upstream() {}

  /** A retry of UNAVAILABLE (and an open circuit) with the options' attempts and backoff. */
  static Retry retry(String name, ClientOptions options) {
    return Retry.of(
        name,
        RetryConfig.custom()
            .maxAttempts(options.maxAttempts())
            .intervalFunction(
                IntervalFunction.ofExponentialRandomBackoff(
                    options.initialBackoff(), 2.0, 0.5, options.maxBackoff()))
            .retryOnException(Upstream::retryable)
            .build());
  }

  /** A circuit breaker that opens when most recent calls failed with UNAVAILABLE or INTERNAL. */
  static CircuitBreaker breaker(String name) {
    return CircuitBreaker.of(
        name,
        CircuitBreakerConfig.custom()
            .slidingWindowSize(20)
            .minimumNumberOfCalls(10)
            .failureRateThreshold(50)
            .waitDurationInOpenState(Duration.ofSeconds(1))
            .permittedNumberOfCallsInHalfOpenState(2)
            .recordException(
                t ->
                    t instanceof StatusRuntimeException e
                        && (e.getStatus().getCode() == Status.Code.UNAVAILABLE
                            || e.getStatus().getCode() == Status.Code.INTERNAL))
            .build());
  }

  static <T> T call(Retry retry, CircuitBreaker breaker, Supplier<T> attempt) {
    return Retry.decorateSupplier(retry, CircuitBreaker.decorateSupplier(breaker, attempt)).get();
  }

  private static boolean retryable(Throwable t) {
    return t instanceof CallNotPermittedException
        || (t instanceof StatusRuntimeException e
            && e.getStatus().getCode() == Status.Code.UNAVAILABLE);
  }

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
