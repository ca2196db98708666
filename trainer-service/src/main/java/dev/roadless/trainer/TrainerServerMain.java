package dev.roadless.trainer;

import dev.roadless.common.runtime.JsonLogFormatter;
import dev.roadless.common.runtime.ServiceMetrics;
import dev.roadless.common.runtime.ServiceRuntime;
import dev.roadless.common.security.Authorization;
import dev.roadless.common.security.SecurityConfig;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Readiness;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import dev.roadless.trainer.service.Trainer;
import dev.roadless.trainer.service.TrainerConfig;
import dev.roadless.trainer.service.TrainerServer;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.ServerBuilder;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Logger;

/**
 * Wiring of a trainer replica: config, optimizer channel, control server, optional autostart. With
 * a run to start it waits (bounded by {@code startup-timeout-seconds}) for the optimizer's health
 * to be SERVING, creates the run, and only then reports {@code roadless.trainer.v1.TrainerService}
 * SERVING; on failure it logs why and exits with status 1.
 */
public final class TrainerServerMain {
  static {
    JsonLogFormatter.selectLogManager(); // before the first Logger: keeps logging through the drain
  }

  private static final Logger LOG = Logger.getLogger(TrainerServerMain.class.getName());

  private TrainerServerMain() {}

  public static void main(String[] args) throws Exception {
    ServiceRuntime runtime = new ServiceRuntime("trainer-service", LOG);
    TrainerConfig config = runtime.config(() -> TrainerConfig.from(args, System.getenv()));
    // One server, or every shard of sharded runs (optimizer-shards / optimizer-shard-targets).
    List<String> targets =
        config.optimizerShardTargets().isEmpty()
            ? List.of(config.optimizerTarget())
            : config.optimizerShardTargets();
    List<ManagedChannel> channels = new ArrayList<>();
    List<OptimizerClient> clients = new ArrayList<>();
    for (String target : targets) {
      ManagedChannel c =
          Grpc.newChannelBuilder(target, config.security().channelCredentials())
              .maxInboundMessageSize(8 << 20)
              .build();
      channels.add(c);
      clients.add(new OptimizerClient(c, ClientOptions.defaults()));
    }
    Trainer trainer = new Trainer(clients, config.datasetRoots());
    SecurityConfig security = config.security();
    ServerBuilder<?> builder =
        Grpc.newServerBuilderForPort(config.port(), security.serverCredentials());
    Authorization.Builder auth = security.authorization(PrometheusRegistry.defaultRegistry);
    if (auth != null) {
      builder.intercept(TrainerRuns.resolvers(auth, trainer).build());
    }
    TrainerServer server =
        new TrainerServer(builder, trainer, new ServiceMetrics(PrometheusRegistry.defaultRegistry))
            .start(config.autostart() == null);
    runtime.metrics(security.metricsAddress(), config.metricsPort());
    runtime.healthPort(security.healthPort(), server.healthService());
    ServiceRuntime.writePortFile(config.portFile(), server.port());
    LOG.info(
        "listening port="
            + server.port()
            + (security.plaintext() ? " plaintext" : " tls")
            + (auth == null ? " auth=off" : " auth=on"));
    runtime.closeAfterDrain(() -> channels.forEach(ManagedChannel::shutdownNow));
    runtime.onShutdown(() -> server.shutdown(config.drainSeconds()));
    if (config.autostart() != null) {
      try {
        Duration timeout = Duration.ofSeconds(config.startupTimeoutSeconds());
        for (int i = 0; i < channels.size(); i++) {
          Readiness.awaitServing(
              channels.get(i),
              OptimizerServiceGrpc.SERVICE_NAME,
              "the optimizer at " + targets.get(i),
              timeout);
        }
        trainer.start(config.autostart());
      } catch (RuntimeException e) {
        // Nothing to serve without the run: say why and exit, so a supervisor sees the failure.
        LOG.severe("cannot start run '" + config.autostart().getRunId() + "': " + e.getMessage());
        System.exit(1);
      }
      server.serving();
      LOG.info("run '" + config.autostart().getRunId() + "' started; SERVING");
    }
    runtime.awaitStop();
  }
}
