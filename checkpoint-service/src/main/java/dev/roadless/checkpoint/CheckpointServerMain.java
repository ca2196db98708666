package dev.roadless.checkpoint;

import dev.roadless.checkpoint.config.CheckpointConfig;
import dev.roadless.checkpoint.remote.OptimizerStateClient;
import dev.roadless.checkpoint.remote.TrainerClient;
import dev.roadless.checkpoint.server.CheckpointServer;
import dev.roadless.checkpoint.service.Checkpoints;
import dev.roadless.checkpoint.store.CheckpointStore;
import dev.roadless.common.runtime.JsonLogFormatter;
import dev.roadless.common.runtime.ServiceMetrics;
import dev.roadless.common.runtime.ServiceRuntime;
import dev.roadless.optimizer.client.OptimizerClient;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
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
    Checkpoints checkpoints =
        new Checkpoints(
            new OptimizerClient(optimizerChannel, config.clientOptions()),
            config.optimizerTarget(),
            new OptimizerStateClient(optimizerChannel, config.clientOptions()),
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
            metrics);
    runtime.closeAfterDrain(executor::shutdownNow);
    runtime.closeAfterDrain(() -> channels.forEach(ManagedChannel::shutdownNow));
    runtime.onShutdown(() -> server.shutdown(config.drainSeconds()));
    server.start();
    ServiceRuntime.writePortFile(config.portFile(), server.port());
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

  private static ManagedChannel channel(String target, int maxMessageBytes) {
    return Grpc.newChannelBuilder(target, InsecureChannelCredentials.create())
        .maxInboundMessageSize(Math.max(maxMessageBytes, 8 << 20))
        .build();
  }
}
