package dev.roadless.common.runtime;

import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * What every Roadless service does around its own work: JSON logs that stay open through the drain,
 * typed configuration (a bad key prints one line and exits with status 2), the Prometheus endpoint,
 * the port file, and a SIGTERM hook that logs, drains, closes what the service opened, logs
 * "stopped" and lets {@code main} return.
 *
 * <p>A service's main class selects the log manager in a static block above its logger field
 * ({@link JsonLogFormatter#selectLogManager}), then builds one of these first thing in {@code
 * main}.
 */
public final class ServiceRuntime {
  private final String service;
  private final Logger log;
  private final CountDownLatch stopped = new CountDownLatch(1);
  private final List<AutoCloseable> afterDrain = new ArrayList<>();

  /** The work of a drain; its resources are closed afterwards whatever it throws. */
  @FunctionalInterface
  public interface Drain {
    void run() throws InterruptedException;
  }

  /**
   * @param service the name bad-configuration messages start with ("optimizer-service")
   * @param log the main class's logger
   */
  public ServiceRuntime(String service, Logger log) {
    this.service = service;
    this.log = log;
    JsonLogFormatter.install();
  }

  /** Parses and logs the configuration; on a bad key prints "service: why" and exits with 2. */
  public <C> C config(Supplier<C> parse) {
    C config;
    try {
      config = parse.get();
    } catch (IllegalArgumentException e) {
      System.err.println(service + ": " + e.getMessage());
      System.exit(2);
      throw e; // not reached
    }
    log.info("config " + config);
    return config;
  }

  /** Serves {@code /metrics} on loopback on {@code port}; none when negative. */
  public void metrics(int port) throws IOException {
    metrics("127.0.0.1", port);
  }

  /**
   * Serves {@code /metrics} from the default registry on {@code address}:{@code port} (the {@code
   * metrics-address} setting); none when the port is negative.
   */
  public void metrics(String address, int port) throws IOException {
    if (port >= 0) {
      HTTPServer server =
          HTTPServer.builder()
              .hostname(address)
              .port(port)
              .registry(PrometheusRegistry.defaultRegistry)
              .buildAndStart();
      closeAfterDrain(server::close);
    }
  }

  /**
   * Serves {@code health} (grpc.health.v1 only: no Roadless RPC, no reflection) in plaintext on
   * {@code port}, for Kubernetes' gRPC probes, which speak no TLS; none when negative.
   */
  public void healthPort(int port, io.grpc.BindableService health) throws IOException {
    if (port >= 0) {
      io.grpc.Server server =
          io.grpc.Grpc.newServerBuilderForPort(port, io.grpc.InsecureServerCredentials.create())
              .addService(health)
              .build()
              .start();
      log.info("health port=" + server.getPort() + " (plaintext, grpc.health.v1 only)");
      closeAfterDrain(server::shutdownNow);
    }
  }

  /** Closed after the drain, in the order given. */
  public void closeAfterDrain(AutoCloseable resource) {
    synchronized (afterDrain) {
      afterDrain.add(resource);
    }
  }

  /** Writes the bound port to {@code file} (for launchers and tests), when one is configured. */
  public static void writePortFile(Path file, int port) throws IOException {
    if (file != null) {
      Files.writeString(file, Integer.toString(port), StandardCharsets.US_ASCII);
    }
  }

  /** Installs the SIGTERM hook: log, {@code drain}, close the resources, log "stopped". */
  public void onShutdown(Drain drain) {
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  log.info("shutdown requested; draining");
                  try {
                    drain.run();
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                  } catch (RuntimeException e) {
                    log.log(Level.WARNING, "drain failed", e);
                  } finally {
                    closeAll();
                    log.info("stopped");
                    stopped.countDown();
                    ServiceLogManager.release();
                  }
                },
                "roadless-drain"));
  }

  /** Blocks until the drain has finished. */
  public void awaitStop() throws InterruptedException {
    stopped.await();
  }

  private void closeAll() {
    List<AutoCloseable> all;
    synchronized (afterDrain) {
      all = new ArrayList<>(afterDrain);
    }
    for (AutoCloseable c : all) {
      try {
        c.close();
      } catch (Exception e) {
        log.log(Level.WARNING, "closing " + c + " failed", e);
      }
    }
  }
}
