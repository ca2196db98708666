package dev.roadless.optimizer;

import dev.roadless.optimizer.client.NettyTuning;
import dev.roadless.optimizer.config.ServerConfig;
import dev.roadless.optimizer.run.RunRegistry;
import dev.roadless.optimizer.server.JsonLogFormatter;
import dev.roadless.optimizer.server.Metrics;
import dev.roadless.optimizer.server.OptimizerServer;
import dev.roadless.optimizer.server.ServiceLogManager;
import dev.roadless.optimizer.store.SnapshotStore;
import dev.roadless.optimizer.wire.CompositeCumulation;
import io.grpc.ServerBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.concurrent.CountDownLatch;
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
    JsonLogFormatter.install();
    ServerConfig config;
    try {
      config = ServerConfig.from(args, System.getenv());
    } catch (IllegalArgumentException e) {
      System.err.println("optimizer-service: " + e.getMessage());
      System.exit(2);
      return;
    }
    LOG.info("config " + config);

    Metrics metrics = new Metrics(PrometheusRegistry.defaultRegistry);
    HTTPServer metricsServer =
        config.metricsPort() < 0
            ? null
            : HTTPServer.builder()
                .port(config.metricsPort())
                .registry(PrometheusRegistry.defaultRegistry)
                .buildAndStart();
    ServerBuilder<?> builder =
        CompositeCumulation.plaintextServer(NettyServerBuilder.forPort(config.port()))
            .flowControlWindow(config.flowControlWindow())
            .maxInboundMessageSize(config.maxMessageBytes());
    OptimizerServer server =
        new OptimizerServer(
            builder,
            new RunRegistry(config.threads()),
            config.snapshotDir() == null ? null : new SnapshotStore(config.snapshotDir()),
            metrics,
            config.snapshotEverySteps(),
            config.snapshotEverySeconds(),
            sharedMemoryDir(config));

    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  LOG.info("shutdown requested; draining");
                  try {
                    server.shutdown(config.drainSeconds());
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                  } finally {
                    if (metricsServer != null) {
                      metricsServer.close();
                    }
                    stopped.countDown();
                    ServiceLogManager.release();
                  }
                },
                "roadless-drain"));
    server.start();
    if (config.portFile() != null) {
      Files.writeString(
          config.portFile(), Integer.toString(server.port()), StandardCharsets.US_ASCII);
    }
    LOG.info("listening port=" + server.port() + " metrics_port=" + config.metricsPort());
    stopped.await();
  }
}
