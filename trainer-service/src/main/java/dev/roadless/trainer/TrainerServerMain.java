package dev.roadless.trainer;

import dev.roadless.common.runtime.JsonLogFormatter;
import dev.roadless.common.runtime.ServerInterceptors;
import dev.roadless.common.runtime.ServiceMetrics;
import dev.roadless.common.runtime.ServiceRuntime;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Readiness;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import dev.roadless.proto.trainer.v1.TrainerServiceGrpc;
import dev.roadless.trainer.service.Trainer;
import dev.roadless.trainer.service.TrainerConfig;
import dev.roadless.trainer.service.TrainerGrpcService;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
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
    ManagedChannel channel =
        Grpc.newChannelBuilder(config.optimizerTarget(), InsecureChannelCredentials.create())
            .maxInboundMessageSize(8 << 20)
            .build();
    Trainer trainer = new Trainer(new OptimizerClient(channel, ClientOptions.defaults()));
    HealthStatusManager health = new HealthStatusManager();
    ServiceMetrics metrics = new ServiceMetrics(PrometheusRegistry.defaultRegistry);
    Server server =
        Grpc.newServerBuilderForPort(config.port(), InsecureServerCredentials.create())
            .addService(
                io.grpc.ServerInterceptors.intercept(
                    new TrainerGrpcService(trainer),
                    ServerInterceptors.exceptionMapper(),
                    ServerInterceptors.metrics(metrics)))
            .addService(health.getHealthService())
            .addService(ProtoReflectionServiceV1.newInstance())
            .build()
            .start();
    runtime.metrics(config.metricsPort());
    // The process is live once it listens (the empty service name: liveness and startup probes).
    // With a run to start, the trainer service is NOT_SERVING until the run exists on the
    // optimizer and the model and data are loaded: whoever waits for it may use the run at once.
    health.setStatus(HealthStatusManager.SERVICE_NAME_ALL_SERVICES, ServingStatus.SERVING);
    setHealth(health, config.autostart() == null);
    ServiceRuntime.writePortFile(config.portFile(), server.getPort());
    LOG.info("listening port=" + server.getPort());
    runtime.closeAfterDrain(channel::shutdownNow);
    runtime.onShutdown(
        () -> {
          health.enterTerminalState();
          trainer.stop(true, TimeUnit.SECONDS.toMillis(config.drainSeconds()));
          server.shutdown().awaitTermination(config.drainSeconds(), TimeUnit.SECONDS);
        });
    if (config.autostart() != null) {
      try {
        Duration timeout = Duration.ofSeconds(config.startupTimeoutSeconds());
        Readiness.awaitServing(
            channel,
            OptimizerServiceGrpc.SERVICE_NAME,
            "the optimizer at " + config.optimizerTarget(),
            timeout);
        trainer.start(config.autostart());
      } catch (RuntimeException e) {
        // Nothing to serve without the run: say why and exit, so a supervisor sees the failure.
        LOG.severe("cannot start run '" + config.autostart().getRunId() + "': " + e.getMessage());
        System.exit(1);
      }
      setHealth(health, true);
      LOG.info("run '" + config.autostart().getRunId() + "' started; SERVING");
    }
    runtime.awaitStop();
  }

  private static void setHealth(HealthStatusManager health, boolean serving) {
    ServingStatus s = serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;

    health.setStatus(TrainerServiceGrpc.SERVICE_NAME, s);
  }
}
