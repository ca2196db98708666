package dev.roadless.checkpoint.server;

import dev.roadless.checkpoint.service.Checkpoints;
import dev.roadless.common.runtime.ServerInterceptors;
import dev.roadless.common.runtime.ServiceMetrics;
import dev.roadless.proto.checkpoint.v1.CheckpointServiceGrpc;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import java.io.IOException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Logger;

/**
 * The checkpoint server's lifecycle: listen, serve once its upstream is ready (health SERVING for
 * {@code roadless.checkpoint.v1.CheckpointService}), and drain on shutdown (NOT_SERVING, new calls
 * refused with UNAVAILABLE, in-flight saves allowed to finish). Takes an injected {@link
 * ServerBuilder} so tests can run it in-process or on loopback.
 */
public final class CheckpointServer {
  private static final Logger LOG = Logger.getLogger(CheckpointServer.class.getName());
  private static final String SERVICE = CheckpointServiceGrpc.SERVICE_NAME;

  private final HealthStatusManager health = new HealthStatusManager();
  private final AtomicBoolean ready = new AtomicBoolean(false);
  private final Server server;

  /**
   * @param builder where to listen; the caller chooses the transport and limits
   */
  public CheckpointServer(
      ServerBuilder<?> builder, Checkpoints checkpoints, ServiceMetrics metrics) {
    this(builder, new CheckpointGrpcService(checkpoints), metrics);
  }

  /**
   * @param builder where to listen; the caller chooses the transport and limits
   * @param maxDownloads downloads streaming at once (CONCURRENCY_LIMIT beyond)
   * @param maxTransfers state checkpoints and restores at once (CONCURRENCY_LIMIT beyond)
   */
  public CheckpointServer(
      ServerBuilder<?> builder,
      Checkpoints checkpoints,
      ServiceMetrics metrics,
      int maxDownloads,
      int maxTransfers) {
    this(builder, new CheckpointGrpcService(checkpoints, maxDownloads, maxTransfers), metrics);
  }

  private CheckpointServer(
      ServerBuilder<?> builder, CheckpointGrpcService service, ServiceMetrics metrics) {
    health.setStatus(HealthStatusManager.SERVICE_NAME_ALL_SERVICES, ServingStatus.NOT_SERVING);
    health.setStatus(SERVICE, ServingStatus.NOT_SERVING);
    this.server =
        builder
            .addService(
                io.grpc.ServerInterceptors.intercept(
                    service,
                    ServerInterceptors.exceptionMapper(),
                    ServerInterceptors.readiness(ready::get),
                    ServerInterceptors.metrics(metrics)))
            .addService(health.getHealthService())
            .addService(ProtoReflectionServiceV1.newInstance())
            .build();
  }

  /** Listens and serves at once: {@link #listen} then {@link #serving}. */
  public CheckpointServer start() throws IOException {
    return listen().serving();
  }

  /**
   * Listens, live (health SERVING for the empty service name) but not ready: the checkpoint service
   * reports NOT_SERVING and refuses calls with UNAVAILABLE (SERVER_NOT_READY) until {@link
   * #serving}.
   */
  public CheckpointServer listen() throws IOException {
    server.start();
    health.setStatus(HealthStatusManager.SERVICE_NAME_ALL_SERVICES, ServingStatus.SERVING);
    return this;
  }

  /** Ready: the checkpoint service reports SERVING and takes calls. */
  public CheckpointServer serving() {
    ready.set(true);
    health.setStatus(SERVICE, ServingStatus.SERVING);
    return this;
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

  /**
   * Drains: reports NOT_SERVING, refuses new calls, lets in-flight calls (saves in progress) finish
   * for up to {@code drainSeconds}, then cancels the rest; a cancelled save leaves nothing behind.
   */
  public void shutdown(long drainSeconds) throws InterruptedException {
    health.enterTerminalState();
    ready.set(false);
    server.shutdown();
    if (!server.awaitTermination(drainSeconds, TimeUnit.SECONDS)) {
      LOG.warning("in-flight calls did not finish within " + drainSeconds + " s; cancelling them");
      server.shutdownNow();
      server.awaitTermination(5, TimeUnit.SECONDS);
    }
    LOG.info("drained");
  }
}
