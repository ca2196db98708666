package dev.roadless.checkpoint;

import dev.roadless.checkpoint.config.CheckpointConfig;
import dev.roadless.checkpoint.remote.OptimizerStateClient;
import dev.roadless.checkpoint.remote.RunReader;
import dev.roadless.checkpoint.remote.ShardedStateTransfer;
import dev.roadless.checkpoint.remote.TrainerClient;
import dev.roadless.checkpoint.server.CheckpointServer;
import dev.roadless.checkpoint.service.Checkpoints;
import dev.roadless.checkpoint.store.CheckpointStore;
import dev.roadless.common.runtime.JsonLogFormatter;
import dev.roadless.common.runtime.ServiceMetrics;
import dev.roadless.common.runtime.ServiceRuntime;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Readiness;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import dev.roadless.proto.trainer.v1.TrainerServiceGrpc;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.logging.Logger;

/**
 * Wiring: read config, open the store, connect upstream, listen, wait for the upstream services to
 * be SERVING, serve, block until SIGTERM, drain.
 */
public final class CheckpointServerMain {
  static {
    JsonLogFormatter.selectLogManager(); // before the first Logger: keeps logging through the drain
  }

  private static final Logger LOG = Logger.getLogger(CheckpointServerMain.class.getName());

  private CheckpointServerMain() {}

  public static void main(String[] args) throws Exception {
    ServiceRuntime runtime = new ServiceRuntime("checkpoint-service", LOG);
    CheckpointConfig config = runtime.config(() -> CheckpointConfig.from(args, System.getenv()));
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
    List<OptimizerStateClient> shards = new ArrayList<>();
    List<OptimizerClient> shardReads = new ArrayList<>();
    for (String target : config.optimizerShardTargets()) {
      ManagedChannel c = channel(target, config.maxMessageBytes());
      channels.add(c);
      shards.add(new OptimizerStateClient(c, config.clientOptions()));
      shardReads.add(new OptimizerClient(c, config.clientOptions()));
    }
    Checkpoints checkpoints =
        new Checkpoints(
            shards.isEmpty()
                ? RunReader.of(new OptimizerClient(optimizerChannel, config.clientOptions()))
                : RunReader.sharded(shardReads),
            config.optimizerTarget(),
            shards.isEmpty()
                ? new OptimizerStateClient(optimizerChannel, config.clientOptions())
                : new ShardedStateTransfer(
                    shards,
                    config.optimizerShardTargets(),
                    store.dir().resolve(".staging").resolve("shards"),
                    executor),
            trainers,
            executor,
            store,
            config.retention(),
            Clock.systemUTC());

    ServiceMetrics metrics = new ServiceMetrics(PrometheusRegistry.defaultRegistry);
    runtime.metrics(config.metricsPort());
    CheckpointServer server =
        new CheckpointServer(
            Grpc.newServerBuilderForPort(config.port(), InsecureServerCredentials.create())
                .maxInboundMessageSize(config.maxMessageBytes()),
            checkpoints,
            metrics,
            config.maxConcurrentDownloads(),
            config.maxConcurrentTransfers());
    runtime.closeAfterDrain(executor::shutdownNow);
    runtime.closeAfterDrain(() -> channels.forEach(ManagedChannel::shutdownNow));
    runtime.onShutdown(() -> server.shutdown(config.drainSeconds()));
    server.listen();
    ServiceRuntime.writePortFile(config.portFile(), server.port());
    awaitUpstream(config, channels);
    server.serving();
    LOG.info(
        "listening port="
            + server.port()
            + " metrics_port="
            + config.metricsPort()
            + " checkpoint_dir="
            + store.dir()
            + " trainers="
            + config.trainerTargets().size());
    runtime.awaitStop();
  }

  /**
   * Waits, bounded by {@code startup-timeout-seconds}, for the optimizer and every trainer to
   * report SERVING; a trainer with a run to start does so once the run exists. On failure logs
   * which one did not come up and exits with status 1.
   */
  private static void awaitUpstream(CheckpointConfig config, List<ManagedChannel> channels) {
    Duration timeout = Duration.ofSeconds(config.startupTimeoutSeconds());
    try {
      Readiness.awaitServing(
          channels.get(0),
          OptimizerServiceGrpc.SERVICE_NAME,
          "the optimizer at " + config.optimizerTarget(),
          timeout);
      for (int r = 0; r < config.trainerTargets().size(); r++) {
        Readiness.awaitServing(
            channels.get(r + 1),
            TrainerServiceGrpc.SERVICE_NAME,
            "trainer " + r + " at " + config.trainerTargets().get(r),
            timeout);
      }
    } catch (RuntimeException e) {
      LOG.severe("upstream not ready: " + e.getMessage());
      System.exit(1);
    }
    LOG.info("upstream ready; SERVING");
  }

  private static ManagedChannel channel(String target, int maxMessageBytes) {
    return Grpc.newChannelBuilder(target, InsecureChannelCredentials.create())
        .maxInboundMessageSize(Math.max(maxMessageBytes, 8 << 20))
        .build();
  }
}
