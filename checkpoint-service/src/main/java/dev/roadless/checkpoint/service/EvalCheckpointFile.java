package dev.roadless.checkpoint.service;

import dev.roadless.checkpoint.format.Safetensors;
import dev.roadless.checkpoint.format.Tensor;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.proto.common.v1.TensorDescriptor;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The tensors of an eval checkpoint, as PyTorch's {@code model.state_dict()} holds them: every
 * trainable tensor at x (float32, the run's shapes, which are PyTorch layouts) and every BatchNorm
 * layer's buffers ({@code running_mean}, {@code running_var}, {@code num_batches_tracked}).
 */
public final class EvalCheckpointFile {
  /** The data file's name inside an eval checkpoint. */
  public static final String FILE = "model.safetensors";

  private EvalCheckpointFile() {}

  /**
   * @param specTensors the run's tensors (names and shapes), from its RunSpec
   * @param x the EVAL parameters of one step
   * @param batchNorm the merged BatchNorm statistics (empty for BatchNorm mode NONE)
   * @throws IllegalArgumentException when x lacks a tensor or a buffer name collides with one
   */
  public static List<Tensor> tensors(
      List<TensorDescriptor> specTensors, Parameters x, List<BatchNormMerge.Layer> batchNorm) {
    List<Tensor> out = new ArrayList<>();
    Set<String> names = new HashSet<>();
    for (TensorDescriptor d : specTensors) {
      long[] shape = d.getShapeList().stream().mapToLong(Long::longValue).toArray();
      out.add(Tensor.ofFloats(d.getName(), shape, x.get(d.getName())));
      names.add(d.getName());
    }
    for (Tensor t : BatchNormMerge.tensors(batchNorm)) {
      if (!names.add(t.name())) {
        throw new IllegalArgumentException("buffer " + t.name() + " collides with a parameter");
      }
      out.add(t);
    }
    return out;
  }

  /** Writes the safetensors file ({@code __metadata__} carries where it came from). */
  public static void write(Path file, List<Tensor> tensors, Map<String, String> metadata)
      throws IOException {
    try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(file), 1 << 16)) {
      Safetensors.write(out, tensors, metadata);
    }
  }
}
