package dev.roadless.trainer;

import dev.roadless.common.runtime.JsonLogFormatter;
import dev.roadless.common.runtime.ServiceMetrics;
import dev.roadless.common.runtime.ServiceRuntime;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.trainer.service.Trainer;
import dev.roadless.trainer.service.TrainerConfig;
import dev.roadless.trainer.service.TrainerServer;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
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
    TrainerServer server =
        new TrainerServer(
                Grpc.newServerBuilderForPort(config.port(), InsecureServerCredentials.create()),
                trainer,
                new ServiceMetrics(PrometheusRegistry.defaultRegistry))
            .start();
    runtime.metrics(config.metricsPort());
    ServiceRuntime.writePortFile(config.portFile(), server.port());
    LOG.info("listening port=" + server.port());
    runtime.closeAfterDrain(channel::shutdownNow);
    runtime.onShutdown(() -> server.shutdown(config.drainSeconds()));
    if (config.autostart() != null) {
      trainer.start(config.autostart());
    }
    runtime.awaitStop();
  }
}
