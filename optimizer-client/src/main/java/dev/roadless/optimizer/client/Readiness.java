package dev.roadless.optimizer.client;

import dev.roadless.common.error.Errors;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.proto.common.v1.ErrorReason;
import io.grpc.Channel;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import java.time.Duration;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Start-up waits on real readiness, each bounded by a deadline: a service's standard gRPC health
 * ({@code grpc.health.v1.Health/Watch}) reaching SERVING, and a run existing on the optimizer.
 *
 * <p>The health wait follows the server's own status stream, waiting for the channel to connect
 * (wait-for-ready), so it wakes when the status changes, not on a timer. The run wait polls with
 * backoff: the optimizer has no watch for run creation. A wait that runs out throws UNAVAILABLE
 * with reason SERVER_NOT_READY (the documented pair: retrying later is safe), naming what it waited
 * for, how long, and the last status seen. A cancelled caller's context ends either wait with
 * CANCELLED.
 */
public final class Readiness {
  private static final long MAX_BACKOFF_NANOS = TimeUnit.SECONDS.toNanos(1);

  private Readiness() {}

  /**
   * Returns once {@code service} on {@code channel} reports SERVING.
   *
   * @param service the health service name, e.g. {@code roadless.optimizer.v1.OptimizerService}
   * @param what how a message names the server ("the optimizer at 127.0.0.1:50051")
   * @throws StatusRuntimeException UNAVAILABLE (reason SERVER_NOT_READY) when it is not SERVING
   *     within {@code timeout}; CANCELLED when the caller's context is cancelled; UNIMPLEMENTED
   *     when the server has no health service
   */
  public static void awaitServing(Channel channel, String service, String what, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    HealthCheckRequest request = HealthCheckRequest.newBuilder().setService(service).build();
    String last = "not connected";
    long backoff = TimeUnit.MILLISECONDS.toNanos(50);
    while (true) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw notReady(what + " did not report " + service + " SERVING", timeout, last, service);
      }
      try (Context.CancellableContext watch = Context.current().withCancellation()) {
        Iterator<HealthCheckResponse> updates =
            watch
                .wrap(
                    () ->
                        HealthGrpc.newBlockingStub(channel)
                            .withWaitForReady()
                            .withDeadlineAfter(left, TimeUnit.NANOSECONDS)
                            .watch(request))
                .call();
        while (updates.hasNext()) {
          ServingStatus status = updates.next().getStatus();
          last = status.name();
          if (status == ServingStatus.SERVING) {
            return;
          }
        }
        last += ", then the stream ended";
      } catch (StatusRuntimeException e) {
        Status.Code code = e.getStatus().getCode();
        if (code == Status.Code.CANCELLED || code == Status.Code.UNIMPLEMENTED) {
          throw e;
        }
        if (code != Status.Code.DEADLINE_EXCEEDED) {
          // The server went away after connecting (a restart); wait before watching again.
          last = code + (e.getStatus().getDescription() == null ? "" : ": " + e.getMessage());
          backoff = pause(backoff, deadline);
        }
      } catch (Exception e) {
        throw Status.INTERNAL.withCause(e).asRuntimeException();
      }
    }
  }

  /**
   * Returns once run {@code runId} exists on the optimizer.
   *
   * @throws StatusRuntimeException UNAVAILABLE (reason SERVER_NOT_READY) when it does not exist
   *     within {@code timeout}; any other failure of {@code GetRunStatus} as it came
   */
  public static void awaitRun(OptimizerClient optimizer, String runId, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    long backoff = TimeUnit.MILLISECONDS.toNanos(50);
    while (true) {
      try {
        optimizer.status(runId);
        return;
      } catch (StatusRuntimeException e) {
        if (!"RUN_NOT_FOUND".equals(OptimizerClient.reason(e))) {
          throw e;
        }
        if (System.nanoTime() >= deadline) {
          throw notReady("run '" + runId + "' was not created", timeout, e.getMessage(), "");
        }
        backoff = pause(backoff, deadline);
      }
    }
  }

  private static long pause(long backoff, long deadline) {
    long nanos = Math.max(0, Math.min(backoff, deadline - System.nanoTime()));
    try {
      TimeUnit.NANOSECONDS.sleep(nanos); // a retry backoff; the caller's deadline bounds it
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw Status.CANCELLED.withDescription("interrupted").withCause(e).asRuntimeException();
    }
    if (Context.current().isCancelled()) {
      throw Status.CANCELLED.withDescription("the wait was cancelled").asRuntimeException();
    }
    return Math.min(MAX_BACKOFF_NANOS, backoff * 2);
  }

  private static StatusRuntimeException notReady(
      String what, Duration timeout, String last, String service) {
    return Errors.toStatus(
        new RoadlessException(
            ErrorReason.ERROR_REASON_SERVER_NOT_READY,
            what + " within " + timeout.toSeconds() + " s (last seen: " + last + ")",
            service.isEmpty() ? Map.of() : Map.of("service", service)));
  }
}
