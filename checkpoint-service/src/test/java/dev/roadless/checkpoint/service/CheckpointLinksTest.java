package dev.roadless.checkpoint.service;

import static dev.roadless.checkpoint.service.StateCheckpointTest.assertRefused;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.checkpoint.store.CheckpointStore;
import dev.roadless.checkpoint.store.Retention;
import dev.roadless.checkpoint.testing.OptimizerHarness;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.proto.checkpoint.v1.BatchNormMode;
import dev.roadless.proto.checkpoint.v1.BatchNormSettings;
import dev.roadless.proto.checkpoint.v1.CheckpointInfo;
import dev.roadless.proto.checkpoint.v1.CheckpointServiceGrpc.CheckpointServiceBlockingStub;
import dev.roadless.proto.checkpoint.v1.DownloadCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.DownloadCheckpointResponse;
import dev.roadless.proto.checkpoint.v1.GetCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.ListCheckpointsRequest;
import dev.roadless.proto.checkpoint.v1.SaveCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.SaveStateCheckpointRequest;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.function.Supplier;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The checkpoint service never follows a symbolic link it did not make (issue 17): a data file,
 * manifest or checkpoint directory that is a link, or resolves outside the checkpoint directory, is
 * refused even when the manifest's SHA-256 matches what the link points to; the start-up clean-up
 * of {@code .trash} and {@code .staging} removes links, never what they point to. Real files, real
 * servers on loopback.
 */
class CheckpointLinksTest {
  private static final String SECRET = "root:x:0:0:secret-account-line\n";

  @TempDir Path tmp;
  private Path dir;
  private Path outside;

  @BeforeEach
  void setUp() throws Exception {
    dir = Files.createDirectory(tmp.resolve("checkpoints"));
    outside = Files.createDirectory(tmp.resolve("outside"));
    Files.writeString(outside.resolve("secret"), SECRET);
  }

  @Test
  void download_dataFileLinkedOutsideWithMatchingManifest_refusedAndNothingSent() throws Exception {
    try (OptimizerHarness h = new OptimizerHarness()) {
      CheckpointServiceBlockingStub stub = serve(h);
      saveX(stub, "weights");
      saveState(stub, "state");
      // The real data files move out and come back as links: every hash still matches.
      relink(dir.resolve("weights/model.safetensors"), outside.resolve("model.safetensors"));
      relink(dir.resolve("state/optimizer-state.binpb"), outside.resolve("optimizer-state.binpb"));
      // A link to a secret, with the manifest rewritten to the secret's size and hash.
      saveX(stub, "leak");
      Path data = dir.resolve("leak/model.safetensors");
      pointManifestAt(dir.resolve("leak"), data, outside.resolve("secret"));
      Files.delete(data);
      Files.createSymbolicLink(data, outside.resolve("secret"));

      for (String name : List.of("weights", "leak")) {
        assertNoLeak(refused(() -> download(stub, name, null)));
        assertNoLeak(refused(() -> get(stub, name)));
      }
      assertNoLeak(refused(() -> stub.restoreState(StateCheckpointTest.restore("state", "r2"))));
      RuntimeException none =
          org.junit.jupiter.api.Assertions.assertThrows(
              RuntimeException.class, () -> h.client(0).status("r2"));
      assertEquals("RUN_NOT_FOUND", OptimizerClient.reason(none), "nothing restored");
      assertOutsideIntact();
    }
  }

  @Test
  void download_manifestLinkedToASecret_refusedWithoutItsBytes() throws Exception {
    try (OptimizerHarness h = new OptimizerHarness()) {
      CheckpointServiceBlockingStub stub = serve(h);
      saveX(stub, "weights");
      Path manifest = dir.resolve("weights").resolve(CheckpointStore.MANIFEST);
      Files.delete(manifest);
      Files.createSymbolicLink(manifest, outside.resolve("secret"));
      assertNoLeak(refused(() -> get(stub, "weights")));
      assertNoLeak(refused(() -> download(stub, "weights", CheckpointStore.MANIFEST)));
      assertNoLeak(refused(() -> download(stub, "weights", null)));
      assertOutsideIntact();
    }
  }

  @Test
  void getAndDownload_checkpointDirectoryLinkedOutside_refusedAndNotListed() throws Exception {
    try (OptimizerHarness h = new OptimizerHarness()) {
      CheckpointServiceBlockingStub stub = serve(h);
      saveX(stub, "weights");
      // A whole, valid checkpoint outside, linked in under another name.
      Path elsewhere = outside.resolve("weights");
      Files.move(dir.resolve("weights"), elsewhere);
      Files.createSymbolicLink(dir.resolve("weights"), elsewhere);
      assertNoLeak(refused(() -> get(stub, "weights")));
      assertNoLeak(refused(() -> download(stub, "weights", null)));
      assertTrue(
          stub.listCheckpoints(ListCheckpointsRequest.getDefaultInstance())
              .getCheckpointsList()
              .isEmpty(),
          "a linked checkpoint is not listed");
    }
  }

  @Test
  void start_trashAndStagingLinkedOutsideOrHoldingLinks_onlyTheLinksGo() throws Exception {
    Path victim = Files.createDirectory(tmp.resolve("victim"));
    Files.createDirectory(victim.resolve("ckpt-1234"));
    Files.writeString(victim.resolve("ckpt-1234/model.safetensors"), "keep");
    Files.writeString(victim.resolve("keep.txt"), "keep");
    Files.createSymbolicLink(dir.resolve(".trash"), victim);
    Path staging = Files.createDirectory(dir.resolve(".staging"));
    Files.createSymbolicLink(staging.resolve("stage-link"), victim);
    Files.createDirectory(staging.resolve("stage-real"));
    Files.createSymbolicLink(staging.resolve("stage-real/inner-link"), victim);
    Files.writeString(staging.resolve("stage-real/partial"), "stale");

    new CheckpointStore(dir);

    assertEquals("keep", Files.readString(victim.resolve("ckpt-1234/model.safetensors")));
    assertEquals("keep", Files.readString(victim.resolve("keep.txt")));
    assertTrue(Files.isDirectory(dir.resolve(".trash"), LinkOption.NOFOLLOW_LINKS));
    assertTrue(Files.isDirectory(dir.resolve(".staging"), LinkOption.NOFOLLOW_LINKS));
    try (var left = Files.list(dir.resolve(".staging"))) {
      assertEquals(0, left.count(), "stale stages and links in them are removed");
    }
    try (var trash = Files.list(dir.resolve(".trash"))) {
      assertEquals(0, trash.count());
    }
  }

  private CheckpointServiceBlockingStub serve(OptimizerHarness h) throws Exception {
    int a = h.startOptimizer();
    h.newRun(h.client(a), "src");
    OptimizerHarness.train(h.client(a), "src", 0, 3);
    return h.checkpointServer(a, dir, new Retention(0, Retention.BestMetric.NONE));
  }

  private static void relink(Path file, Path movedTo) throws Exception {
    Files.move(file, movedTo);
    Files.createSymbolicLink(file, movedTo);
  }

  /** Rewrites the manifest so that its data file entry describes {@code target}'s bytes. */
  private static void pointManifestAt(Path checkpoint, Path data, Path target) throws Exception {
    Path manifest = checkpoint.resolve(CheckpointStore.MANIFEST);
    String json = Files.readString(manifest);
    json =
        json.replace(sha256(Files.readAllBytes(data)), sha256(Files.readAllBytes(target)))
            .replaceFirst(
                "\"size_bytes\" : " + Files.size(data), "\"size_bytes\" : " + Files.size(target));
    assertTrue(json.contains("\"size_bytes\" : " + Files.size(target)), json);
    Files.writeString(manifest, json);
  }

  private void assertOutsideIntact() throws Exception {
    assertEquals(SECRET, Files.readString(outside.resolve("secret")));
  }

  private static StatusRuntimeException refused(Supplier<?> call) {
    return assertRefused(Status.Code.DATA_LOSS, "CHECKPOINT_CORRUPTED", call::get);
  }

  private static void assertNoLeak(StatusRuntimeException e) {
    String told = e.getStatus().getDescription() + " " + e.getTrailers();
    for (String leak : List.of("root:", "secret", "outside", SECRET.substring(0, 4))) {
      assertFalse(told.contains(leak), "leaks '" + leak + "': " + told);
    }
  }

  private static CheckpointInfo saveX(CheckpointServiceBlockingStub stub, String name) {
    return stub.saveCheckpoint(
            SaveCheckpointRequest.newBuilder()
                .setRunId("src")
                .setName(name)
                .setBatchNorm(
                    BatchNormSettings.newBuilder().setMode(BatchNormMode.BATCH_NORM_MODE_NONE))
                .build())
        .getCheckpoint();
  }

  private static void saveState(CheckpointServiceBlockingStub stub, String name) {
    stub.saveStateCheckpoint(
        SaveStateCheckpointRequest.newBuilder().setRunId("src").setName(name).build());
  }

  private static CheckpointInfo get(CheckpointServiceBlockingStub stub, String name) {
    return stub.getCheckpoint(GetCheckpointRequest.newBuilder().setName(name).build())
        .getCheckpoint();
  }

  /** Drains a download; fails if any chunk carries the secret. */
  private static Void download(CheckpointServiceBlockingStub stub, String name, String file) {
    DownloadCheckpointRequest.Builder r = DownloadCheckpointRequest.newBuilder().setName(name);
    if (file != null) {
      r.setFile(file);
    }
    Iterator<DownloadCheckpointResponse> it = stub.downloadCheckpoint(r.build());
    while (it.hasNext()) {
      DownloadCheckpointResponse m = it.next();
      assertFalse(
          m.getChunk().getData().toString(StandardCharsets.UTF_8).contains("root:"),
          "a chunk of the secret was sent");
    }
    return null;
  }

  private static String sha256(byte[] bytes) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
  }
}
