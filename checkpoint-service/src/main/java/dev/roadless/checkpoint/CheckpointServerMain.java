package dev.roadless.checkpoint;

import dev.roadless.checkpoint.config.CheckpointConfig;
import dev.roadless.checkpoint.remote.StateTransfer;
import dev.roadless.checkpoint.remote.TrainerClient;
import dev.roadless.checkpoint.server.CheckpointServer;
import dev.roadless.checkpoint.service.Checkpoints;
import dev.roadless.checkpoint.store.CheckpointStore;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.server.JsonLogFormatter;
import dev.roadless.optimizer.server.Metrics;
import dev.roadless.optimizer.server.ServiceLogManager;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.logging.Logger;

/** Wiring: read config, open the store, connect upstream, start, block until SIGTERM, drain. */
public final class CheckpointServerMain {
  static {
    JsonLogFormatter.selectLogManager(); // before the first Logger: keeps logging through the drain
  }

  private static final Logger LOG = Logger.getLogger(CheckpointServerMain.class.getName());

  private CheckpointServerMain() {}

  public static void main(String[] args) throws Exception {
    JsonLogFormatter.install();
    CheckpointConfig config;
    try {
      config = CheckpointConfig.from(args, System.getenv());
    } catch (IllegalArgumentException e) {
      System.err.println("checkpoint-service: " + e.getMessage());
      System.exit(2);
      return;
    }
    LOG.info("config " + config);

    CheckpointStore store = new CheckpointStore(config.checkpointDir());
    List<ManagedChannel> channels = new ArrayList<>();
    ManagedChannel optimizerChannel = channel(config.optimizerTarget(), config.maxMessageBytes());
    channels.add(optimizerChannel);
    List<TrainerClient> trainers = new ArrayList<>();
    for (String target : config.trainerTargets()) {
      ManagedChannel c = channel(target, config.maxMessageBytes());
      channels.add(c);
      trainers.add(new TrainerClient(c, trainers.size(), target, config.clientOptions()));
    }
    ExecutorService executor = Executors.newCachedThreadPool();
    Checkpoints checkpoints =
        new Checkpoints(
            new OptimizerClient(optimizerChannel, config.clientOptions()),
            config.optimizerTarget(),
            new StateTransfer(optimizerChannel, config.clientOptions()),
            trainers,
            executor,
            store,
            config.retention(),
            Clock.systemUTC());

    Metrics metrics = new Metrics(PrometheusRegistry.defaultRegistry);
    HTTPServer metricsServer =
        config.metricsPort() < 0
            ? null
            : HTTPServer.builder()
                .port(config.metricsPort())
                .registry(PrometheusRegistry.defaultRegistry)
                .buildAndStart();
    CheckpointServer server =
        new CheckpointServer(
            Grpc.newServerBuilderForPort(config.port(), InsecureServerCredentials.create())
                .maxInboundMessageSize(config.maxMessageBytes()),
            checkpoints,
            metrics);

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
                    executor.shutdownNow();
                    channels.forEach(ManagedChannel::shutdownNow);
                    if (metricsServer != null) {
                      metricsServer.close();
                    }
                    LOG.info("stopped");
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
    LOG.info(
        "listening port="
            + server.port()
            + " metrics_port="
            + config.metricsPort()
            + " checkpoint_dir="
            + store.dir()
            + " trainers="
            + config.trainerTargets().size());
    stopped.await();
  }

  private static ManagedChannel channel(String target, int maxMessageBytes) {
    return Grpc.newChannelBuilder(target, InsecureChannelCredentials.create())
        .maxInboundMessageSize(Math.max(maxMessageBytes, 8 << 20))
        .build();
  }
}
