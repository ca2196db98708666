package dev.roadless.checkpoint.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.roadless.checkpoint.format.Safetensors;
import dev.roadless.checkpoint.format.Tensor;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Runs {@code src/test/python/load_checkpoint.py} with {@code python3}: builds the architecture in
 * PyTorch, {@code load_state_dict(strict=True)} from each checkpoint file, and returns the
 * eval-mode logits on the given inputs. Needs torch and numpy ({@code .ci/run} installs them from
 * the wheels on disk); fails with that hint when they are missing.
 */
public final class PyTorchLoader {
  private static final Path SCRIPT = Path.of("src/test/python/load_checkpoint.py");

  private PyTorchLoader() {}

  /**
   * @param inputs N examples, row-major, each of {@code inputShape}
   * @return per checkpoint, the logits [N, classes] row-major
   */
  public static List<float[]> logits(
      String architecture,
      int[] inputShape,
      float[] inputs,
      int n,
      List<Path> checkpoints,
      Path tmp)
      throws IOException, InterruptedException {
    Path in = tmp.resolve("inputs.safetensors");
    long[] shape = new long[inputShape.length + 1];
    shape[0] = n;
    for (int i = 0; i < inputShape.length; i++) {
      shape[i + 1] = inputShape[i];
    }
    try (OutputStream out = Files.newOutputStream(in)) {
      Safetensors.write(out, List.of(Tensor.ofFloats("inputs", shape, inputs)), Map.of());
    }
    List<String> cmd = new ArrayList<>();
    cmd.add("python3");
    cmd.add(SCRIPT.toString());
    cmd.add("--architecture");
    cmd.add(architecture);
    cmd.add("--input-shape");
    cmd.add(
        String.join(",", java.util.Arrays.stream(inputShape).mapToObj(Integer::toString).toList()));
    cmd.add("--inputs");
    cmd.add(in.toString());
    for (Path c : checkpoints) {
      cmd.add("--checkpoint");
      cmd.add(c.toString());
    }
    Path stdout = tmp.resolve("pytorch.out");
    Path stderr = tmp.resolve("pytorch.err");
    Process p =
        new ProcessBuilder(cmd)
            .redirectOutput(stdout.toFile())
            .redirectError(stderr.toFile())
            .start();
    if (!p.waitFor(5, TimeUnit.MINUTES)) {
      p.destroyForcibly();
      throw new IllegalStateException("load_checkpoint.py did not finish in 5 minutes");
    }
    String err = Files.readString(stderr, StandardCharsets.UTF_8);
    if (p.exitValue() != 0) {
      throw new IllegalStateException(
          "load_checkpoint.py failed (exit "
              + p.exitValue()
              + "); it needs python3 with torch and numpy:"
              + " python3 -m pip install --no-index torch numpy\n"
              + err);
    }
    JsonNode result = new ObjectMapper().readTree(stdout.toFile());
    List<float[]> out = new ArrayList<>();
    for (JsonNode r : result.get("results")) {
      JsonNode values = r.get("logits");
      float[] logits = new float[values.size()];
      for (int i = 0; i < logits.length; i++) {
        logits[i] = (float) values.get(i).asDouble();
      }
      out.add(logits);
    }
    System.out.println(
        "pytorch: torch "
            + result.get("torch").asText()
            + ", "
            + out.size()
            + " checkpoints loaded strictly");
    return out;
  }

  /** Largest |a - b|. */
  public static double maxAbsDiff(float[] a, float[] b) {
    if (a.length != b.length) {
      throw new AssertionError("lengths " + a.length + " vs " + b.length);
    }
    double m = 0;
    for (int i = 0; i < a.length; i++) {
      m = Math.max(m, Math.abs((double) a[i] - b[i]));
    }
    return m;
  }

  /** Largest |a|. */
  public static double maxAbs(float[] a) {
    double m = 0;
    for (float v : a) {
      m = Math.max(m, Math.abs(v));
    }
    return m;
  }
}
