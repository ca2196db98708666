package dev.roadless.loadtest;

import dev.roadless.common.security.AccessFile;
import dev.roadless.common.security.DevPki;
import dev.roadless.optimizer.OptimizerServerMain;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A real optimizer server in its own JVM on loopback, with its /metrics on a port of its own. */
final class OptimizerProcess implements AutoCloseable {
  private final Process process;
  private final Path log;
  final int port;
  final int metricsPort;

  /** The CA that signed the server's certificate, and the tool's token (set by start). */
  static Path CA;

  static String TOKEN;

  private OptimizerProcess(Process process, Path log, int port, int metricsPort) {
    this.process = process;
    this.log = log;
    this.port = port;
    this.metricsPort = metricsPort;
  }

  private static synchronized Path pki() throws Exception {
    if (CA != null) {
      return CA.getParent();
    }
    // Outside any one test's temporary folder, which JUnit deletes after its test.
    Path pki = Files.createTempDirectory("roadless-loadtest-pki");
    DevPki ca = DevPki.create("loadtest-ca", java.time.Duration.ofDays(1));
    ca.writeCa(pki.resolve("ca.pem"));
    ca.issue(
        "server",
        java.time.Duration.ofDays(1),
        pki.resolve("server.pem"),
        pki.resolve("server.key"));
    TOKEN = DevPki.newToken();
    Files.writeString(
        pki.resolve("access.txt"),
        "loadtest " + AccessFile.sha256Hex(TOKEN) + " *=trainer *=operator *=reader\n");
    CA = pki.resolve("ca.pem");
    return pki;
  }

  static OptimizerProcess start(Path work) throws Exception {
    int metricsPort;
    try (ServerSocket s = new ServerSocket(0)) {
      metricsPort = s.getLocalPort();
    }
    Path portFile = work.resolve("port.txt");
    Path log = work.resolve("server.log");
    // TLS and a token, as in production: the tool's token may train, operate and read any run.
    // One CA and one token for every server this JVM starts, so one tool run can reach several.
    Path pki = pki();
    List<String> cmd =
        List.of(
            Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "-Xmx512m",
            "-cp",
            System.getProperty("java.class.path"),
            OptimizerServerMain.class.getName(),
            "--port=0",
            "--port-file=" + portFile,
            "--metrics-port=" + metricsPort,
            "--threads=1",
            "--drain-seconds=2",
            "--shared-memory-dir=",
            "--tls-cert=" + pki.resolve("server.pem"),
            "--tls-key=" + pki.resolve("server.key"),
            "--access-file=" + pki.resolve("access.txt"));
    Process p =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
            .start();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (!Files.exists(portFile) || Files.readString(portFile).isBlank()) {
      if (!p.isAlive() || System.nanoTime() > deadline) {
        p.destroyForcibly();
        throw new IllegalStateException("server did not start:\n" + Files.readString(log));
      }
      Thread.sleep(20); // polling a file another process writes; there is nothing to latch on
    }
    return new OptimizerProcess(
        p, log, Integer.parseInt(Files.readString(portFile).trim()), metricsPort);
  }

  String target() {
    return "localhost:" + port;
  }

  String metricsUrl() {
    return "http://127.0.0.1:" + metricsPort + "/metrics";
  }

  /**
   * One counter sample of the server's /metrics, read with a regular expression of its own (not the
   * tool's parser, which the tests check against it); 0 when the series does not exist yet.
   */
  double counter(String name, String label, String value) throws Exception {
    String body =
        HttpClient.newHttpClient()
            .send(
                HttpRequest.newBuilder(URI.create(metricsUrl())).build(),
                HttpResponse.BodyHandlers.ofString())
            .body();
    Matcher m =
        Pattern.compile(
                "(?m)^"
                    + Pattern.quote(name)
                    + "\\{[^}]*"
                    + Pattern.quote(label + "=\"" + value + "\"")
                    + "[^}]*\\}\\s+(\\S+)")
            .matcher(body);
    double total = 0;
    while (m.find()) {
      total += Double.parseDouble(m.group(1));
    }
    return total;
  }

  String log() throws IOException {
    return Files.readString(log);
  }

  @Override
  public void close() throws Exception {
    process.destroy();
    if (!process.waitFor(30, TimeUnit.SECONDS)) {
      process.destroyForcibly();
    }
  }
}
