package dev.roadless.optimizer.server;

import dev.roadless.optimizer.run.Run;
import dev.roadless.optimizer.run.RunRegistry;
import dev.roadless.optimizer.store.SnapshotStore;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.ServerInterceptors;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import java.io.IOException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Logger;

/**
 * The optimizer server's lifecycle: restore snapshots (health NOT_SERVING meanwhile), serve, and
 * drain on shutdown (NOT_SERVING, finish in-flight calls, final snapshots). Takes an injected
 * {@link ServerBuilder} so tests can run it in-process or on loopback.
 */
public final class OptimizerServer {
  private static final Logger LOG = Logger.getLogger(OptimizerServer.class.getName());
  private static final String SERVICE = OptimizerServiceGrpc.SERVICE_NAME;

  private final RunRegistry runs;
  private final SnapshotStore store;
  private final SnapshotScheduler snapshots;
  private final SharedSegments segments;
  private final HealthStatusManager health = new HealthStatusManager();
  private final AtomicBoolean ready = new AtomicBoolean(false);
  private final Server server;

  /** A server without shared memory: every replica sends chunks. */
  public OptimizerServer(
      ServerBuilder<?> builder,
      RunRegistry runs,
      SnapshotStore store,
      Metrics metrics,
      long snapshotEverySteps,
      long snapshotEverySeconds) {
    this(builder, runs, store, metrics, snapshotEverySteps, snapshotEverySeconds, null);
  }

  /**
   * @param builder where to listen; the caller chooses the transport and limits
   * @param store snapshot storage, or null to keep state in memory only
   * @param sharedMemoryDir where same-host replicas' segments live ({@code /dev/shm}), or null to
   *     refuse AttachSharedMemory
   */
  public OptimizerServer(
      ServerBuilder<?> builder,
      RunRegistry runs,
      SnapshotStore store,
      Metrics metrics,
      long snapshotEverySteps,
      long snapshotEverySeconds,
      java.nio.file.Path sharedMemoryDir) {
    this.runs = runs;
    this.segments = new SharedSegments(sharedMemoryDir);
    this.store = store;
    this.snapshots =
        new SnapshotScheduler(store, runs, metrics, snapshotEverySteps, snapshotEverySeconds);
    health.setStatus(HealthStatusManager.SERVICE_NAME_ALL_SERVICES, ServingStatus.NOT_SERVING);
    health.setStatus(SERVICE, ServingStatus.NOT_SERVING);
    OptimizerGrpcService service = new OptimizerGrpcService(runs, metrics, snapshots, segments);
    this.server =
        builder
            .addService(
                ServerInterceptors.intercept(
                    service.definition(),
                    dev.roadless.common.runtime.ServerInterceptors.exceptionMapper(),
                    dev.roadless.common.runtime.ServerInterceptors.readiness(ready::get),
                    dev.roadless.common.runtime.ServerInterceptors.metrics(metrics.service())))
            .addService(health.getHealthService())
            .addService(ProtoReflectionServiceV1.newInstance())
            .build();
  }

  /** Starts listening, then restores snapshots; calls get UNAVAILABLE until that is done. */
  public OptimizerServer start() throws IOException {
    server.start();
    if (store != null) {
      long t0 = System.nanoTime();
      var restored = store.readAll(StateStreams::restore);
      for (Run.RunSnapshot snapshot : restored) {
        runs.restore(snapshot);
        snapshots.restored(runs.get(snapshot.id()));
      }
      LOG.info(
          () ->
              "restored runs="
                  + restored.size()
                  + " from="
                  + store.dir()
                  + " ms="
                  + (System.nanoTime() - t0) / 1_000_000);
    }
    ready.set(true);
    health.setStatus(HealthStatusManager.SERVICE_NAME_ALL_SERVICES, ServingStatus.SERVING);
    health.setStatus(SERVICE, ServingStatus.SERVING);
    return this;
  }

  public int port() {
    return server.getPort();
  }

  public RunRegistry runs() {
    return runs;
  }

  /**
   * Drains: reports NOT_SERVING, refuses new calls, lets in-flight calls finish for up to {@code
   * drainSeconds}, then writes final snapshots.
   */
  public void shutdown(long drainSeconds) throws InterruptedException {
    health.enterTerminalState();
    ready.set(false);
    server.shutdown();
    // Parked Train and GetParameters calls would hold the drain open: release them now.
    RuntimeException draining =
        new dev.roadless.common.error.RoadlessException(
            dev.roadless.proto.common.v1.ErrorReason.ERROR_REASON_SERVER_NOT_READY,
            "server is shutting down; retry against the restarted server");
    runs.all().forEach(run -> run.cancelWaiters(draining));
    if (!server.awaitTermination(drainSeconds, TimeUnit.SECONDS)) {
      LOG.warning("in-flight calls did not finish within " + drainSeconds + " s; cancelling them");
      server.shutdownNow();
    }
    snapshots.snapshotAllAndWait();
    snapshots.close();
    segments.close();
    server.awaitTermination(5, TimeUnit.SECONDS);
    LOG.info("drained; final snapshots written");
  }

  public void awaitTermination() throws InterruptedException {
    server.awaitTermination();
  }
}
