package dev.roadless.optimizer.client;

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
 * The one retry and circuit-breaker policy of every Roadless gRPC client (the optimizer SDK, the
 * checkpoint service's calls to the optimizer and the trainers): UNAVAILABLE, and a call the open
 * circuit refused, is retried with exponential backoff and jitter ({@link ClientOptions}' attempts
 * and backoff bounds); the circuit opens when at least half of the last 20 calls (10 at least)
 * failed with UNAVAILABLE or INTERNAL, and half-opens after a second (for at most two seconds).
 * Only idempotent calls may go through it.
 */
public final class Resilience {
  private final Retry retry;
  private final CircuitBreaker breaker;

  private Resilience(String name, ClientOptions options) {
    this.retry =
        Retry.of(
            name,
            RetryConfig.custom()
                .maxAttempts(options.maxAttempts())
                .intervalFunction(
                    IntervalFunction.ofExponentialRandomBackoff(
                        options.initialBackoff(), 2.0, 0.5, options.maxBackoff()))
                .retryOnException(Resilience::retryable)
                .build());
    this.breaker =
        CircuitBreaker.of(
            name,
            CircuitBreakerConfig.custom()
                .slidingWindowSize(20)
                .minimumNumberOfCalls(10)
                .failureRateThreshold(50)
                .waitDurationInOpenState(Duration.ofSeconds(1))
                .permittedNumberOfCallsInHalfOpenState(2)
                // A half-open trial call may be a long one (a SYNC replica's push waits for the
                // others): without a bound it would hold its permit, and the replica it waits for
                // could never get one. After this long the circuit opens again and half-opens
                // with fresh permits.
                .maxWaitDurationInHalfOpenState(Duration.ofSeconds(2))
                .recordException(Resilience::serverFailure)
                .build());
  }

  /**
   * A policy with its own retry state and circuit, named {@code name} (one per upstream target).
   */
  public static Resilience of(String name, ClientOptions options) {
    return new Resilience(name, options);
  }

  /**
   * Runs {@code attempt}, retried as described above; what finally fails is thrown: the call's
   * {@link StatusRuntimeException}, or a {@link CallNotPermittedException} if the circuit stayed
   * open.
   */
  public <T> T call(Supplier<T> attempt) {
    return Retry.decorateSupplier(retry, CircuitBreaker.decorateSupplier(breaker, attempt)).get();
  }

  private static boolean retryable(Throwable t) {
    return t instanceof CallNotPermittedException
        || (t instanceof StatusRuntimeException e
            && e.getStatus().getCode() == Status.Code.UNAVAILABLE);
  }

  private static boolean serverFailure(Throwable t) {
    return t instanceof StatusRuntimeException e
        && (e.getStatus().getCode() == Status.Code.UNAVAILABLE
            || e.getStatus().getCode() == Status.Code.INTERNAL);
  }
}
