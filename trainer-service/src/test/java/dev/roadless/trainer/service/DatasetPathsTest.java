package dev.roadless.trainer.service;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.protobuf.Any;
import com.google.rpc.ErrorInfo;
import dev.roadless.common.runtime.ServiceMetrics;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.proto.optimizer.v1.OptimizerVariant;
import dev.roadless.proto.optimizer.v1.StepMode;
import dev.roadless.proto.trainer.v1.DatasetSpec;
import dev.roadless.proto.trainer.v1.GetStatusRequest;
import dev.roadless.proto.trainer.v1.StartRequest;
import dev.roadless.proto.trainer.v1.TrainerServiceGrpc;
import dev.roadless.proto.trainer.v1.TrainerState;
import dev.roadless.trainer.data.DatasetRoots;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A trainer on loopback opens dataset files only under its dataset roots, after resolving symbolic
 * links; every other path gets one refusal that tells nothing about the file. Real files, a real
 * control server. The trainer's optimizer channel points nowhere: a refused Start never gets as far
 * as the optimizer.
 */
class DatasetPathsTest {
  private static final int EXAMPLES = 64;

  @TempDir Path tmp;
  private Path root;
  private Path outside;
  private TrainerServer server;
  private final List<ManagedChannel> channels = new ArrayList<>();
  private TrainerServiceGrpc.TrainerServiceBlockingStub stub;

  @BeforeEach
  void setUp() throws IOException {
    root = Files.createDirectory(tmp.resolve("datasets"));
    outside = Files.createDirectory(tmp.resolve("private"));
    writeIdx(root, "digits");
    writeIdx(outside, "secret");
    ManagedChannel nowhere =
        Grpc.newChannelBuilderForAddress("127.0.0.1", 1, InsecureChannelCredentials.create())
            .build();
    channels.add(nowhere);
    Trainer trainer =
        new Trainer(
            new OptimizerClient(nowhere, ClientOptions.defaults()),
            DatasetRoots.parse(root.toString()));
    server =
        new TrainerServer(
                Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create()),
                trainer,
                ServiceMetrics.newIsolated())
            .start();
    ManagedChannel toTrainer =
        Grpc.newChannelBuilderForAddress(
                "127.0.0.1", server.port(), InsecureChannelCredentials.create())
            .build();
    channels.add(toTrainer);
    stub = TrainerServiceGrpc.newBlockingStub(toTrainer);
  }

  @AfterEach
  void tearDown() throws InterruptedException {
    server.shutdown(1);
    channels.forEach(ManagedChannel::shutdownNow);
  }

  @Test
  void start_pathsOutsideTheRootsMissingOrNotFiles_oneRefusalThatTellsNothing() throws Exception {
    Files.createSymbolicLink(root.resolve("passwd-link"), Path.of("/etc/passwd"));
    Files.createSymbolicLink(root.resolve("secret-link"), outside.resolve("secret-images"));
    Files.createSymbolicLink(root.resolve("dir-link"), outside);
    Files.createDirectory(root.resolve("a-directory"));
    Map<String, String> paths = new LinkedHashMap<>();
    paths.put("/etc/passwd", "/etc/passwd");
    paths.put("/proc/self/environ", "/proc/self/environ");
    paths.put("a valid IDX file outside the roots", outside.resolve("secret-images").toString());
    paths.put("../ out of a root", root.resolve("../private/secret-images").toString());
    paths.put("a symlink in a root to /etc/passwd", root.resolve("passwd-link").toString());
    paths.put(
        "a symlink in a root to a valid file outside", root.resolve("secret-link").toString());
    paths.put("through a symlinked directory", root.resolve("dir-link/secret-images").toString());
    paths.put("a missing file in a root", root.resolve("missing").toString());
    paths.put("a missing file outside", outside.resolve("missing").toString());
    paths.put("a directory in a root", root.resolve("a-directory").toString());
    paths.put("a root itself", root.toString());
    paths.put("a relative path", "etc/passwd");
    paths.put("a NUL byte", root.resolve("digits-images") + "\0x");

    String expected = null;
    for (Map.Entry<String, String> e : paths.entrySet()) {
      StatusRuntimeException refused = refuse(e.getValue(), root.resolve("digits-labels"));
      String answer = describe(refused);
      assertEquals(Status.Code.INVALID_ARGUMENT, refused.getStatus().getCode(), e.getKey());
      assertTrue(answer.contains("reason=DATASET_PATH_REFUSED"), e.getKey() + ": " + answer);
      assertTrue(answer.contains("field=dataset.train_images_path"), e.getKey() + ": " + answer);
      for (String leak : List.of("root:", "OMP_", "PATH=", "passwd", "secret", "private", "0x")) {
        assertFalse(answer.contains(leak), e.getKey() + " leaks '" + leak + "': " + answer);
      }
      if (expected == null) {
        expected = answer;
      }
      assertEquals(expected, answer, e.getKey() + " is told apart from /etc/passwd");
    }
    // The labels path gets the same treatment, naming its own field.
    String labels =
        describe(refuse(root.resolve("digits-images").toString(), Path.of("/etc/passwd")));
    assertTrue(labels.contains("field=dataset.train_labels_path"), labels);
    // Nothing changed: the trainer never started.
    assertEquals(
        TrainerState.TRAINER_STATE_IDLE,
        stub.getStatus(GetStatusRequest.getDefaultInstance()).getStatus().getState());
  }

  @Test
  void start_fifoOutsideTheRoots_refusedWithoutOpeningIt() throws Exception {
    // Opening a FIFO for reading blocks until a writer comes: a refusal within the deadline
    // proves the trainer never opened it, through the link or directly.
    Path fifo = outside.resolve("fifo");
    Process mkfifo = new ProcessBuilder("mkfifo", fifo.toString()).start();
    assumeTrue(mkfifo.waitFor(10, TimeUnit.SECONDS) && mkfifo.exitValue() == 0, "no mkfifo");
    Files.createSymbolicLink(root.resolve("fifo-link"), fifo);
    for (Path p : List.of(fifo, root.resolve("fifo-link"))) {
      StatusRuntimeException refused = refuse(p.toString(), root.resolve("digits-labels"));
      assertTrue(describe(refused).contains("reason=DATASET_PATH_REFUSED"), describe(refused));
    }
  }

  @Test
  void start_fifoInsideTheRoot_refusedWithoutOpeningIt() throws Exception {
    Path fifo = root.resolve("fifo");
    Process mkfifo = new ProcessBuilder("mkfifo", fifo.toString()).start();
    assumeTrue(mkfifo.waitFor(10, TimeUnit.SECONDS) && mkfifo.exitValue() == 0, "no mkfifo");
    StatusRuntimeException refused = refuse(fifo.toString(), root.resolve("digits-labels"));
    assertTrue(describe(refused).contains("reason=DATASET_PATH_REFUSED"), describe(refused));
  }

  @Test
  void trainingJob_filesUnderTheRoot_loadIncludingALinkThatStaysInside() throws IOException {
    Files.createSymbolicLink(root.resolve("images-link"), root.resolve("digits-images"));
    TrainingJob job =
        TrainingJob.of(
            request(root.resolve("images-link").toString(), root.resolve("digits-labels")),
            DatasetRoots.parse(root.toString()));
    assertEquals(EXAMPLES, job.train().size());
    assertEquals(EXAMPLES, job.holdout().size());
  }

  @Test
  void trainingJob_noRoots_onlyTheBundledDigits() {
    assertEquals(
        8000, TrainingJob.of(request("", Path.of("")), DatasetRoots.none()).train().size());
    var refused =
        assertThrows(
            dev.roadless.common.error.RoadlessException.class,
            () ->
                TrainingJob.of(
                    request(
                        root.resolve("digits-images").toString(), root.resolve("digits-labels")),
                    DatasetRoots.none()));
    assertEquals("ERROR_REASON_DATASET_PATH_REFUSED", refused.reason().name());
  }

  @Test
  void trainingJob_malformedFileUnderTheRoot_datasetUnavailableWithDetails() throws IOException {
    Files.write(root.resolve("bad-images"), new byte[] {1, 2, 3, 4, 5, 6, 7, 8});
    var refused =
        assertThrows(
            dev.roadless.common.error.RoadlessException.class,
            () ->
                TrainingJob.of(
                    request(root.resolve("bad-images").toString(), root.resolve("digits-labels")),
                    DatasetRoots.parse(root.toString())));
    assertEquals("ERROR_REASON_DATASET_UNAVAILABLE", refused.reason().name());
    assertTrue(refused.getMessage().contains("magic number"), refused.getMessage());
  }

  @Test
  void config_datasetRoots_defaultNoneAndAMissingDirectoryRefusedAtStartUp() {
    assertTrue(
        TrainerConfig.from(new String[] {"--plaintext=true"}, Map.of())
            .datasetRoots()
            .roots()
            .isEmpty());
    TrainerConfig c =
        TrainerConfig.from(
            new String[] {"--plaintext=true", "--dataset-roots=" + root + "," + outside}, Map.of());
    assertEquals(2, c.datasetRoots().roots().size());
    assertThrows(
        IllegalArgumentException.class,
        () ->
            TrainerConfig.from(
                new String[] {"--plaintext=true"},
                Map.of("ROADLESS_DATASET_ROOTS", tmp.resolve("nope").toString())));
  }

  private StatusRuntimeException refuse(String images, Path labels) {
    return assertThrows(
        StatusRuntimeException.class,
        () -> stub.withDeadlineAfter(20, TimeUnit.SECONDS).start(request(images, labels)));
  }

  /** Everything the caller is told: code, message and ErrorInfo. */
  private static String describe(StatusRuntimeException e) throws IOException {
    StringBuilder out =
        new StringBuilder(e.getStatus().getCode() + " " + e.getStatus().getDescription());
    com.google.rpc.Status details = StatusProto.fromThrowable(e);
    for (Any any : details == null ? List.<Any>of() : details.getDetailsList()) {
      ErrorInfo info = any.unpack(ErrorInfo.class);
      out.append(" reason=").append(info.getReason());
      info.getMetadataMap().forEach((k, v) -> out.append(' ').append(k).append('=').append(v));
    }
    return out.toString();
  }

  private static StartRequest request(String images, Path labels) {
    String l = labels.toString();
    return StartRequest.newBuilder()
        .setRunId("paths")
        .setReplica(0)
        .setReplicas(1)
        .setModel(TrainerConfig.MODELS.get("mlp"))
        .setDataset(
            DatasetSpec.newBuilder()
                .setTrainImagesPath(images)
                .setTrainLabelsPath(l)
                .setHoldoutImagesPath(images)
                .setHoldoutLabelsPath(l))
        .setGlobalBatchSize(EXAMPLES)
        .setMaxSteps(1)
        .setVariant(OptimizerVariant.OPTIMIZER_VARIANT_SGD)
        .setStepMode(StepMode.STEP_MODE_SYNC)
        .build();
  }

  /**
   * {@code EXAMPLES} 28x28 images and their labels, as {@code NAME-images} and {@code NAME-labels}.
   */
  private static void writeIdx(Path dir, String name) throws IOException {
    ByteBuffer images = ByteBuffer.allocate(16 + EXAMPLES * 784);
    images.putInt(0x00000803).putInt(EXAMPLES).putInt(28).putInt(28);
    for (int i = 0; i < EXAMPLES * 784; i++) {
      images.put((byte) (i * 31));
    }
    ByteBuffer labels = ByteBuffer.allocate(8 + EXAMPLES);
    labels.putInt(0x00000801).putInt(EXAMPLES);
    for (int i = 0; i < EXAMPLES; i++) {
      labels.put((byte) (i % 10));
    }
    Files.write(dir.resolve(name + "-images"), images.array());
    Files.write(dir.resolve(name + "-labels"), labels.array());
  }
}
