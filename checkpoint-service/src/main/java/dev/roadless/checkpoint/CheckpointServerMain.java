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
import dev.roadless.common.security.Authorization;
import dev.roadless.common.security.SecurityConfig;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Readiness;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import dev.roadless.proto.trainer.v1.TrainerServiceGrpc;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.ServerBuilder;
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
    // Calls to the optimizer and the trainers go with this service's own identity (its token or
    // client certificate), over TLS unless plaintext was asked for.
    ChannelCredentials credentials = config.security().channelCredentials();
    ManagedChannel optimizerChannel =
        channel(config.optimizerTarget(), credentials, config.maxMessageBytes());
    channels.add(optimizerChannel);
    List<TrainerClient> trainers = new ArrayList<>();
    for (String target : config.trainerTargets()) {
      ManagedChannel c = channel(target, credentials, config.maxMessageBytes());
      channels.add(c);
      trainers.add(new TrainerClient(c, trainers.size(), target, config.clientOptions()));
    }
    ExecutorService executor = Executors.newCachedThreadPool();
    List<OptimizerStateClient> shards = new ArrayList<>();
    List<OptimizerClient> shardReads = new ArrayList<>();
    for (String target : config.optimizerShardTargets()) {
      ManagedChannel c = channel(target, credentials, config.maxMessageBytes());
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
    SecurityConfig security = config.security();
    runtime.metrics(security.metricsAddress(), config.metricsPort());
    ServerBuilder<?> builder =
        Grpc.newServerBuilderForPort(config.port(), security.serverCredentials())
            .maxInboundMessageSize(config.maxMessageBytes());
    Authorization.Builder auth = security.authorization(PrometheusRegistry.defaultRegistry);
    if (auth != null) {
      builder.intercept(CheckpointRuns.resolvers(auth, store).build());
    }
    CheckpointServer server =
        new CheckpointServer(
            builder,
            checkpoints,
            metrics,
            config.maxConcurrentDownloads(),
            config.maxConcurrentTransfers());
    runtime.closeAfterDrain(executor::shutdownNow);
    runtime.closeAfterDrain(() -> channels.forEach(ManagedChannel::shutdownNow));
    runtime.onShutdown(() -> server.shutdown(config.drainSeconds()));
    server.listen();
    runtime.healthPort(security.healthPort(), server.healthService());
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
            + (security.plaintext() ? " plaintext" : " tls")
            + (auth == null ? " auth=off" : " auth=on")
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

  private static ManagedChannel channel(
      String target, ChannelCredentials credentials, int maxMessageBytes) {
    return Grpc.newChannelBuilder(target, credentials)
        .maxInboundMessageSize(Math.max(maxMessageBytes, 8 << 20))
        .build();
  }
}
