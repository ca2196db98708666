package dev.roadless.trainer.bench;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The PyTorch side of the benchmark: {@code tools/bench_pytorch.py} as a worker process. */
final class TorchWorker implements AutoCloseable {
  private static final Pattern MS = Pattern.compile("\"ms\":\\s*\\[([^\\]]*)\\]");
  private final Process process;
  private final BufferedWriter in;
  private final BufferedReader out;

  private TorchWorker(Process process) {
    this.process = process;
    this.in =
        new BufferedWriter(
            new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8));
    this.out =
        new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
  }

  static TorchWorker start(String python, Path script, List<String> args) throws IOException {
    List<String> cmd = new ArrayList<>(List.of(python, script.toString()));
    cmd.addAll(args);
    Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    return new TorchWorker(p);
  }

  /** One JSON line answering {@code command}. */
  String ask(String command) throws IOException {
    in.write(command);
    in.newLine();
    in.flush();
    String line = out.readLine();
    if (line == null) {
      throw new IOException("PyTorch worker exited (status " + waitFor() + ")");
    }
    if (line.contains("\"error\"")) {
      throw new IOException("PyTorch worker: " + line);
    }
    return line;
  }

  /** Per-iteration times in milliseconds. */
  double[] time(String model, int warmup, int iterations) throws IOException {
    Matcher m = MS.matcher(ask("time " + model + " " + warmup + " " + iterations));
    if (!m.find()) {
      throw new IOException("unexpected answer from the PyTorch worker");
    }
    String[] parts = m.group(1).split(",");
    double[] ms = new double[parts.length];
    for (int i = 0; i < parts.length; i++) {
      ms[i] = Double.parseDouble(parts[i].trim());
    }
    return ms;
  }

  private int waitFor() {
    try {
      return process.waitFor();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return -1;
    }
  }

  @Override
  public void close() throws IOException {
    in.close();
    waitFor();
  }
}
