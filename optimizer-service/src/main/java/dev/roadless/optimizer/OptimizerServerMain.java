package dev.roadless.optimizer;

import dev.roadless.common.runtime.JsonLogFormatter;
import dev.roadless.common.runtime.ServiceRuntime;
import dev.roadless.common.security.Authorization;
import dev.roadless.common.security.SecurityConfig;
import dev.roadless.optimizer.client.NettyTuning;
import dev.roadless.optimizer.config.ServerConfig;
import dev.roadless.optimizer.server.Metrics;
import dev.roadless.optimizer.server.OptimizerServer;
import dev.roadless.optimizer.store.SnapshotStore;
import dev.roadless.optimizer.wire.CompositeCumulation;
import dev.roadless.optimizer.wire.SocketTuning;
import io.grpc.ServerBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.util.logging.Logger;

/** Wiring: read config, build, start, block until SIGTERM, drain. */
public final class OptimizerServerMain {
  static {
    JsonLogFormatter.selectLogManager(); // before the first Logger: keeps logging through the drain
  }

  private static final Logger LOG = Logger.getLogger(OptimizerServerMain.class.getName());

  private OptimizerServerMain() {}

  /** The configured shared-memory directory if it exists; otherwise shared memory is off. */
  private static java.nio.file.Path sharedMemoryDir(ServerConfig config) {
    java.nio.file.Path dir = config.sharedMemoryDir();
    if (dir != null && !java.nio.file.Files.isDirectory(dir)) {
      LOG.warning("shared-memory-dir " + dir + " is not a directory; shared memory is off");
      return null;
    }
    return dir;
  }

  public static void main(String[] args) throws Exception {
    NettyTuning.apply(); // before anything touches gRPC's buffer pool
    ServiceRuntime runtime = new ServiceRuntime("optimizer-service", LOG);
    ServerConfig config = runtime.config(() -> ServerConfig.from(args, System.getenv()));
    Metrics metrics = new Metrics(PrometheusRegistry.defaultRegistry);
    // Process CPU seconds, resident memory, heap and GC: how a load test sees the server's cost.
    JvmMetrics.builder().register(PrometheusRegistry.defaultRegistry);
    runtime.metrics(config.security().metricsAddress(), config.metricsPort());
    SecurityConfig security = config.security();
    NettyServerBuilder netty =
        SocketTuning.server(
            security.plaintext()
                ? CompositeCumulation.plaintextServer(NettyServerBuilder.forPort(config.port()))
                : NettyServerBuilder.forPort(config.port(), security.serverCredentials()));
    Authorization.Builder auth = security.authorization(PrometheusRegistry.defaultRegistry);
    if (auth != null) {
      netty.intercept(auth.build()); // outermost: nothing unauthorized reaches the service
    }
    ServerBuilder<?> builder =
        netty
            .flowControlWindow(config.flowControlWindow())
            .maxConcurrentCallsPerConnection(config.maxStreamsPerConnection());
    OptimizerServer server =
        OptimizerServer.builder(builder)
            .maxMessageBytes(config.maxMessageBytes())
            .threads(config.threads())
            .snapshotStore(
                config.snapshotDir() == null ? null : new SnapshotStore(config.snapshotDir()))
            .metrics(metrics)
            .snapshotEvery(config.snapshotEverySteps(), config.snapshotEverySeconds())
            .sharedMemoryDir(sharedMemoryDir(config))
            .memoryBudget(config.memoryBudgetBytes())
            .sharedMemoryBudget(config.sharedMemoryBudgetBytes())
            .streamIdle(java.time.Duration.ofSeconds(config.streamIdleSeconds()))
            .maxConcurrentExports(config.maxConcurrentExports())
            .build();
    runtime.onShutdown(() -> server.shutdown(config.drainSeconds()));
    server.start();
    runtime.healthPort(security.healthPort(), server.healthService());
    ServiceRuntime.writePortFile(config.portFile(), server.port());
    LOG.info(
        "listening port="
            + server.port()
            + (security.plaintext() ? " plaintext" : " tls")
            + (auth == null ? " auth=off" : " auth=on")
            + " metrics_port="
            + config.metricsPort());
    runtime.awaitStop();
  }
}
