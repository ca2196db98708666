package dev.roadless.optimizer.server;

import dev.roadless.common.runtime.MessageLimit;
import dev.roadless.optimizer.run.MemoryBudget;
import dev.roadless.optimizer.run.RunRegistry;
import dev.roadless.optimizer.store.SnapshotStore;
import dev.roadless.optimizer.transport.SharedMemoryTransport;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.ServerInterceptors;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
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

  /**
   * Health service name that is NOT_SERVING while some run's latest snapshot failed (full or
   * read-only disk); the server itself keeps serving. For alerts, not for liveness probes.
   */
  public static final String SNAPSHOTS = "roadless.optimizer.v1.Snapshots";

  private final RunRegistry runs;
  private final SnapshotStore store;
  private final SnapshotScheduler snapshots;
  private final SharedMemoryTransport segments;
  private final IdleStreams idle;
  private final HealthStatusManager health = new HealthStatusManager();
  private final AtomicBoolean ready = new AtomicBoolean(false);
  private final Server server;

  /**
   * A builder for a server listening on {@code transport} (in-process, loopback, Netty: the caller
   * chooses the transport and its limits). By default it keeps state in memory only, takes no
   * snapshots, refuses AttachSharedMemory and runs each step kernel on one thread.
   */
  public static Builder builder(ServerBuilder<?> transport) {
    return new Builder(transport);
  }

  /** The server's wiring; every setting has a default (see {@link #builder}). */
  public static final class Builder {
    private final ServerBuilder<?> transport;
    private int threads = 1;
    private Metrics metrics;
    private SnapshotStore store;
    private long snapshotEverySteps;
    private long snapshotEverySeconds;
    private Path sharedMemoryDir;
    private long memoryBudgetBytes;
    private long sharedMemoryBudgetBytes;
    private Duration streamIdle = Duration.ofMinutes(5);
    private int maxConcurrentExports = 2;
    private int maxMessageBytes = 4 << 20;

    private Builder(ServerBuilder<?> transport) {
      this.transport = transport;
    }

    /** Worker threads of each run's fused step kernel (at least 1). */
    public Builder threads(int threads) {
      if (threads < 1) {
        throw new IllegalArgumentException("threads must be at least 1");
      }
      this.threads = threads;
      return this;
    }

    /** Where the server's metrics go; by default an isolated registry. */
    public Builder metrics(Metrics metrics) {
      this.metrics = metrics;
      return this;
    }

    /** Snapshot storage, restored on start; null (the default) keeps state in memory only. */
    public Builder snapshotStore(SnapshotStore store) {
      this.store = store;
      return this;
    }

    /**
     * Snapshot a run after {@code steps} steps, or a changed one after {@code seconds} (0: never).
     */
    public Builder snapshotEvery(long steps, long seconds) {
      this.snapshotEverySteps = steps;
      this.snapshotEverySeconds = seconds;
      return this;
    }

    /**
     * Where same-host replicas' shared-memory segments live ({@code /dev/shm}); null (the default)
     * refuses AttachSharedMemory, and every replica sends chunks.
     */
    public Builder sharedMemoryDir(Path dir) {
      this.sharedMemoryDir = dir;
      return this;
    }

    /**
     * The memory every run, push buffer and state copy is admitted against; 0 (the default) takes
     * 80% of the JVM's heap limit.
     */
    public Builder memoryBudget(long bytes) {
      this.memoryBudgetBytes = bytes;
      return this;
    }

    /**
     * Bytes of shared-memory segments allowed at once; 0 (the default) takes half of the
     * shared-memory directory's file system.
     */
    public Builder sharedMemoryBudget(long bytes) {
      this.sharedMemoryBudgetBytes = bytes;
      return this;
    }

    /**
     * How long a client stream may stay silent on its turn before it is closed (STREAM_IDLE); zero
     * never closes one. Five minutes by default.
     */
    public Builder streamIdle(Duration idle) {
      this.streamIdle = idle;
      return this;
    }

    /** ExportState calls served at once (2 by default); more get CONCURRENCY_LIMIT. */
    public Builder maxConcurrentExports(int exports) {
      if (exports < 1) {
        throw new IllegalArgumentException("maxConcurrentExports must be at least 1");
      }
      this.maxConcurrentExports = exports;
      return this;
    }

    /**
     * The largest request message (bytes, serialized or inflated) the server takes; a larger one
     * gets RESOURCE_EXHAUSTED with ErrorInfo MESSAGE_TOO_LARGE. Sets the transport's own limit to
     * {@link dev.roadless.common.runtime.MessageLimit#transportLimit} of it. Default 4 MiB.
     */
    public Builder maxMessageBytes(int maxMessageBytes) {
      if (maxMessageBytes < 1024) {
        throw new IllegalArgumentException("maxMessageBytes must be at least 1024");
      }
      this.maxMessageBytes = maxMessageBytes;
      return this;
    }

    public OptimizerServer build() {
      return new OptimizerServer(this);
    }
  }

  private OptimizerServer(Builder b) {
    MemoryBudget heap =
        new MemoryBudget(
            "heap",
            b.memoryBudgetBytes > 0
                ? b.memoryBudgetBytes
                : (long) (Runtime.getRuntime().maxMemory() * 0.8));
    RunRegistry runs = new RunRegistry(b.threads, heap);
    Metrics metrics = b.metrics == null ? Metrics.newIsolated() : b.metrics;
    SnapshotStore store = b.store;
    ServerBuilder<?> builder = b.transport;
    long snapshotEverySteps = b.snapshotEverySteps;
    long snapshotEverySeconds = b.snapshotEverySeconds;
    Path sharedMemoryDir = b.sharedMemoryDir;
    this.runs = runs;
    this.segments =
        new SharedMemoryTransport(
            sharedMemoryDir,
            SharedMemoryTransport.budget(sharedMemoryDir, b.sharedMemoryBudgetBytes));
    this.idle = new IdleStreams(b.streamIdle);
    this.store = store;
    this.snapshots =
        new SnapshotScheduler(store, runs, metrics, snapshotEverySteps, snapshotEverySeconds);
    health.setStatus(HealthStatusManager.SERVICE_NAME_ALL_SERVICES, ServingStatus.NOT_SERVING);
    health.setStatus(SERVICE, ServingStatus.NOT_SERVING);
    health.setStatus(SNAPSHOTS, ServingStatus.SERVING);
    snapshots.onHealth(
        ok -> health.setStatus(SNAPSHOTS, ok ? ServingStatus.SERVING : ServingStatus.NOT_SERVING));
    OptimizerGrpcService service =
        new OptimizerGrpcService(runs, metrics, snapshots, segments, idle, b.maxConcurrentExports);
    this.server =
        builder
            .maxInboundMessageSize(MessageLimit.transportLimit(b.maxMessageBytes))
            .addService(
                ServerInterceptors.intercept(
                    MessageLimit.apply(service.definition(), b.maxMessageBytes),
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
      // Restored inside the read, so a run that cannot be restored (non-finite, a step counter
      // out of range) is set aside like a corrupt file, and every other run serves.
      var restored = store.readAll(reader -> runs.restore(StateStreams.restore(reader)));
      restored.forEach(snapshots::restored);
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

  /** The runs this server holds (for tests and tools in this process). */
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
    java.util.List<String> unsaved = snapshots.snapshotAllAndWait();
    snapshots.close();
    segments.close();
    idle.close();
    server.awaitTermination(5, TimeUnit.SECONDS);
    if (store == null) {
      LOG.info("drained; no snapshot store, state was in memory only");
    } else if (unsaved.isEmpty()) {
      LOG.info("drained; final snapshots written");
    } else {
      LOG.severe("drained; final snapshots FAILED for runs " + unsaved + " (see the errors above)");
    }
  }

  public void awaitTermination() throws InterruptedException {
    server.awaitTermination();
  }
}
