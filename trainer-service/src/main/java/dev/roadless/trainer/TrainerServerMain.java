package dev.roadless.trainer;

import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.server.JsonLogFormatter;
import dev.roadless.optimizer.server.Metrics;
import dev.roadless.optimizer.server.ServerInterceptors;
import dev.roadless.optimizer.server.ServiceLogManager;
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
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.concurrent.CountDownLatch;
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
    JsonLogFormatter.install();
    TrainerConfig config;
    try {
      config = TrainerConfig.from(args, System.getenv());
    } catch (IllegalArgumentException e) {
      System.err.println("trainer-service: " + e.getMessage());
      System.exit(2);
      return;
    }
    LOG.info("config " + config);
    ManagedChannel channel =
        Grpc.newChannelBuilder(config.optimizerTarget(), InsecureChannelCredentials.create())
            .maxInboundMessageSize(8 << 20)
            .build();
    Trainer trainer = new Trainer(new OptimizerClient(channel, ClientOptions.defaults()));
    HealthStatusManager health = new HealthStatusManager();
    Metrics metrics = new Metrics(PrometheusRegistry.defaultRegistry);
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
    HTTPServer metricsServer =
        config.metricsPort() < 0
            ? null
            : HTTPServer.builder().port(config.metricsPort()).buildAndStart();
    health.setStatus(TrainerServiceGrpc.SERVICE_NAME, ServingStatus.SERVING);
    health.setStatus(HealthStatusManager.SERVICE_NAME_ALL_SERVICES, ServingStatus.SERVING);
    if (config.portFile() != null) {
      Files.writeString(
          config.portFile(), Integer.toString(server.getPort()), StandardCharsets.US_ASCII);
    }
    LOG.info("listening port=" + server.getPort());
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  LOG.info("shutdown requested; draining");
                  health.enterTerminalState();
                  try {
                    trainer.stop(true, TimeUnit.SECONDS.toMillis(config.drainSeconds()));
                    server.shutdown().awaitTermination(config.drainSeconds(), TimeUnit.SECONDS);
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                  } finally {
                    if (metricsServer != null) {
                      metricsServer.close();
                    }
                    channel.shutdownNow();
                    LOG.info("stopped");
                    stopped.countDown();
                    ServiceLogManager.release();
                  }
                },
                "roadless-drain"));
    if (config.autostart() != null) {
      trainer.start(config.autostart());
    }
    stopped.await();
  }
}
