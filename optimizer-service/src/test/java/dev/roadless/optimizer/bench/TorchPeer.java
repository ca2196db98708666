package dev.roadless.optimizer.bench;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The peer: a PyTorch RPC parameter server (torch.distributed.rpc over TensorPipe's TCP transport)
 * stepping torch.optim.AdamW over the same parameters, in processes of {@code
 * src/test/python/torch_rpc_peer.py} started here on loopback. Runs only where {@code python3 -c
 * "import torch"} works.
 */
final class TorchPeer {
  private TorchPeer() {}

  /** The script, from the module's directory (Maven's) or the repository's root. */
  static Path script() {
    String configured = System.getProperty("serving.peerScript");
    if (configured != null) {
      return Path.of(configured);
    }
    Path here = Path.of("src/test/python/torch_rpc_peer.py");
    return Files.exists(here) ? here : Path.of("optimizer-service").resolve(here);
  }

  /** Null when the peer can run here, else why not (one line). */
  static String unavailable() {
    if (!Files.exists(script())) {
      return "peer script " + script() + " not found";
    }
    try {
      Process p =
          new ProcessBuilder("python3", "-c", "import torch").redirectErrorStream(true).start();
      p.getInputStream().readAllBytes();
      return p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0
          ? null
          : "python3 -c \"import torch\" fails here";
    } catch (java.io.IOException | InterruptedException e) {
      return "python3 not runnable here (" + e.getMessage() + ")";
    }
  }

  /** The peer's figures: replica 0's median ms, the slowest replica's steps/s, every line. */
  record Result(double medianMs, double stepsPerSecond, List<String> lines) {}

  private static final Pattern MEDIAN = Pattern.compile("median ([0-9.]+) ms");
  private static final Pattern RATE = Pattern.compile("([0-9.]+) steps/s");

  static Result run(int replicas, long params, int warmup, int steps) throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    List<Process> processes = new ArrayList<>();
    List<String> lines = new ArrayList<>();
    try {
      processes.add(start("server", port, replicas, params, warmup, steps, 0));
      for (int r = 0; r < replicas; r++) {
        processes.add(start("replica", port, replicas, params, warmup, steps, r));
      }
      for (Process p : processes) {
        try (BufferedReader reader =
            new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
          String line;
          while ((line = reader.readLine()) != null) {
            if (line.startsWith("RESULT ")) {
              lines.add(line.substring(7));
            } else {
              System.err.println("peer: " + line);
            }
          }
        }
        if (!p.waitFor(600, TimeUnit.SECONDS) || p.exitValue() != 0) {
          throw new IllegalStateException("a peer process failed; its output is above");
        }
      }
    } finally {
      for (Process p : processes) {
        p.destroyForcibly();
      }
    }
    double median = Double.NaN;
    double rate = Double.POSITIVE_INFINITY;
    for (String line : lines) {
      if (line.startsWith("peer replica")) {
        Matcher m = MEDIAN.matcher(line);
        if (line.startsWith("peer replica 0") && m.find()) {
          median = Double.parseDouble(m.group(1));
        }
        Matcher r = RATE.matcher(line);
        if (r.find()) {
          rate = Math.min(rate, Double.parseDouble(r.group(1)));
        }
      }
    }
    return new Result(median, rate, lines);
  }

  private static Process start(
      String role, int port, int replicas, long params, int warmup, int steps, int rank)
      throws java.io.IOException {
    ProcessBuilder pb =
        new ProcessBuilder(
            "python3",
            script().toString(),
            role,
            "--port=" + port,
            "--replicas=" + replicas,
            "--params=" + params,
            "--warmup=" + warmup,
            "--steps=" + steps,
            "--rank=" + rank);
    pb.environment().put("OMP_NUM_THREADS", "2");
    pb.environment().put("PYTHONWARNINGS", "ignore");
    return pb.redirectError(ProcessBuilder.Redirect.INHERIT).start();
  }
}
