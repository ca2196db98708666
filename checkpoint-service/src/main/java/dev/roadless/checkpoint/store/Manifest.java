package dev.roadless.checkpoint.store;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.util.List;

/**
 * A checkpoint's {@code manifest.json}: what it holds, where it came from, and the SHA-256 of each
 * of its files. It is written last into the staging directory, so a committed checkpoint always has
 * one. JSON keys are snake_case; absent values are left out.
 *
 * @param formatVersion 1
 * @param name the checkpoint's name (its directory)
 * @param kind {@link #EVAL} or {@link #STATE}
 * @param runId the run it was taken from
 * @param step the run's completed steps k (eval: x_k)
 * @param createTime commit time, ISO-8601 UTC
 * @param variant the run's optimizer variant, for example {@code OPTIMIZER_VARIANT_ADAMW}
 * @param optimizer eval: the optimizer's RunStatus at step k (spec, live hyperparameters, schedule
 *     scalars) in protobuf JSON; state: the StateHeader of the export
 * @param batchNorm eval only: how the BatchNorm statistics were made
 * @param recomputedMetrics hold-out metrics at x with the checkpoint's statistics
 * @param staleMetrics hold-out metrics at x with replica 0's training statistics (collected at y)
 * @param metric the caller's score, higher is better
 * @param files the data files (not the manifest itself)
 * @param tensors eval only: every tensor of the safetensors file
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Manifest(
    int formatVersion,
    String name,
    String kind,
    String runId,
    long step,
    String createTime,
    String variant,
    JsonNode optimizer,
    BatchNorm batchNorm,
    Metrics recomputedMetrics,
    Metrics staleMetrics,
    Double metric,
    List<FileEntry> files,
    List<TensorEntry> tensors) {
  public static final String EVAL = "eval";
  public static final String STATE = "state";

  private static final ObjectMapper JSON =
      new ObjectMapper()
          .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
          .enable(SerializationFeature.INDENT_OUTPUT)
          .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

  /**
   * @param mode EMA, PRECISE or NONE
   * @param batches EMA: per replica; PRECISE: in all
   * @param batchSize examples per batch and replica; 0 when each replica used its training share
   * @param dataSeed seed of the batches' data order
   * @param replicas the trainers' answers
   * @param layers the merged statistics per BatchNorm layer
   */
  public record BatchNorm(
      String mode,
      int batches,
      int batchSize,
      long dataSeed,
      List<ReplicaAnswer> replicas,
      List<Layer> layers) {}

  /**
   * @param index position in the service's trainer-targets
   * @param target the trainer's address
   * @param replica the replica index the trainer trains as
   * @param step the step whose x it used (always the checkpoint's step)
   * @param batches batches it forwarded
   */
  public record ReplicaAnswer(int index, String target, int replica, long step, int batches) {}

  /**
   * @param layer the BatchNorm module name, for example {@code bn1}
   * @param count values per channel the merged statistics are made of
   * @param numBatchesTracked the {@code num_batches_tracked} written
   */
  public record Layer(String layer, long count, long numBatchesTracked) {}

  /** Hold-out loss (mean cross-entropy), accuracy and example count. */
  public record Metrics(double loss, double accuracy, long examples) {}

  /** A file: name, size, SHA-256 (lower-case hex) and format. */
  public record FileEntry(String name, long sizeBytes, String sha256, String format) {}

  /** A tensor of the safetensors file: name, dtype (F32, I64) and shape. */
  public record TensorEntry(String name, String dtype, List<Long> shape) {}

  /** The manifest as pretty-printed JSON. */
  public byte[] toJson() {
    try {
      return JSON.writeValueAsBytes(this);
    } catch (IOException e) {
      throw new IllegalStateException("manifest not serializable", e);
    }
  }

  /** Parses a manifest; IOException when it is not one. */
  public static Manifest parse(byte[] json) throws IOException {
    Manifest m = JSON.readValue(json, Manifest.class);
    if (m == null || m.formatVersion() != 1 || m.name() == null || m.files() == null) {
      throw new IOException("not a version 1 checkpoint manifest");
    }
    return m;
  }

  /** The data file (the only entry of files). */
  public FileEntry dataFile() {
    return files.get(0);
  }
}
