package dev.roadless.trainer.service;

import dev.roadless.common.runtime.ServerInterceptors;
import dev.roadless.common.runtime.ServiceMetrics;
import dev.roadless.proto.trainer.v1.TrainerServiceGrpc;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import java.io.IOException;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * A trainer replica's control server and its lifecycle: serve {@code
 * roadless.trainer.v1.TrainerService} (with health and reflection, errors mapped to status +
 * ErrorInfo, metrics), and drain on shutdown (NOT_SERVING, the step in flight pushed, in-flight
 * calls finished). Takes an injected {@link ServerBuilder} so tests can run it in-process or on
 * loopback.
 */
public final class TrainerServer {
  private static final Logger LOG = Logger.getLogger(TrainerServer.class.getName());
  private static final String SERVICE = TrainerServiceGrpc.SERVICE_NAME;

  private final Trainer trainer;
  private final HealthStatusManager health = new HealthStatusManager();
  private final Server server;

  /**
   * @param builder where to listen; the caller chooses the transport and limits
   * @param trainer the replica this server controls
   */
  public TrainerServer(ServerBuilder<?> builder, Trainer trainer, ServiceMetrics metrics) {
    this.trainer = trainer;
    health.setStatus(HealthStatusManager.SERVICE_NAME_ALL_SERVICES, ServingStatus.NOT_SERVING);
    health.setStatus(SERVICE, ServingStatus.NOT_SERVING);
    this.server =
        builder
            .addService(
                io.grpc.ServerInterceptors.intercept(
                    new TrainerGrpcService(trainer),
                    ServerInterceptors.exceptionMapper(),
                    ServerInterceptors.metrics(metrics)))
            .addService(health.getHealthService())
            .addService(ProtoReflectionServiceV1.newInstance())
            .build();
  }

  /** Starts listening and reports the trainer service SERVING. */
  public TrainerServer start() throws IOException {
    return start(true);
  }

  /**
   * Starts listening. The process reports live at once (the empty service name: liveness and
   * startup probes); the trainer service reports SERVING only when {@code serving}. A replica with
   * a run to start passes false and calls {@link #serving} once the run exists on the optimizer, so
   * whoever waits for it may use the run at once.
   */
  public TrainerServer start(boolean serving) throws IOException {
    server.start();
    health.setStatus(HealthStatusManager.SERVICE_NAME_ALL_SERVICES, ServingStatus.SERVING);
    if (serving) {
      serving();
    }
    return this;
  }

  /** Reports the trainer service SERVING. */
  public void serving() {
    health.setStatus(SERVICE, ServingStatus.SERVING);
  }

  /**
   * The health service this server reports on, to serve also on a plaintext health-only port
   * (Kubernetes' gRPC probes speak no TLS): {@code ServiceRuntime.healthPort}.
   */
  public io.grpc.BindableService healthService() {
    return health.getHealthService();
  }

  public int port() {
    return server.getPort();
  }

  public Trainer trainer() {
    return trainer;
  }

  /**
   * Drains: reports NOT_SERVING, lets the training loop push its step in flight and stop, then lets
   * in-flight calls finish, each for up to {@code drainSeconds}.
   */
  public void shutdown(long drainSeconds) throws InterruptedException {
    health.enterTerminalState();
    trainer.stop(true, TimeUnit.SECONDS.toMillis(drainSeconds));
    server.shutdown();
    if (!server.awaitTermination(drainSeconds, TimeUnit.SECONDS)) {
      LOG.warning("in-flight calls did not finish within " + drainSeconds + " s; cancelling them");
      server.shutdownNow();
      server.awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
