package dev.roadless.trainer;

import dev.roadless.common.runtime.JsonLogFormatter;
import dev.roadless.common.runtime.ServerInterceptors;
import dev.roadless.common.runtime.ServiceMetrics;
import dev.roadless.common.runtime.ServiceRuntime;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.OptimizerClient;
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
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/** Wiring of a trainer replica: config, optimizer channel, control server, optional autostart. */
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
    health.setStatus(TrainerServiceGrpc.SERVICE_NAME, ServingStatus.SERVING);
    health.setStatus(HealthStatusManager.SERVICE_NAME_ALL_SERVICES, ServingStatus.SERVING);
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
      trainer.start(config.autostart());
    }
    runtime.awaitStop();
  }
}
