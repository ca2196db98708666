package dev.roadless.checkpoint.service;

import static dev.roadless.checkpoint.service.StateCheckpointTest.assertRefused;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.roadless.checkpoint.store.Retention;
import dev.roadless.checkpoint.testing.OptimizerHarness;
import dev.roadless.proto.checkpoint.v1.BatchNormMode;
import dev.roadless.proto.checkpoint.v1.BatchNormSettings;
import dev.roadless.proto.checkpoint.v1.CheckpointInfo;
import dev.roadless.proto.checkpoint.v1.CheckpointKind;
import dev.roadless.proto.checkpoint.v1.CheckpointServiceGrpc.CheckpointServiceBlockingStub;
import dev.roadless.proto.checkpoint.v1.DeleteCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.DownloadCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.DownloadCheckpointResponse;
import dev.roadless.proto.checkpoint.v1.GetCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.ListCheckpointsRequest;
import dev.roadless.proto.checkpoint.v1.SaveCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.SaveStateCheckpointRequest;
import io.grpc.Status;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** List, get, download and delete over gRPC, with real files; names and corruption. */
class CheckpointStorageApiTest {
  @TempDir Path dir;

  @Test
  void listGetDownloadDelete_savedCheckpoints_roundTrip() throws Exception {
    try (OptimizerHarness h = new OptimizerHarness()) {
      CheckpointServiceBlockingStub stub = serve(h);
      CheckpointInfo eval = saveX(stub, "weights");
      stub.saveStateCheckpoint(SaveStateCheckpointRequest.newBuilder().setRunId("src").build());

      List<CheckpointInfo> all =
          stub.listCheckpoints(ListCheckpointsRequest.getDefaultInstance()).getCheckpointsList();
      assertEquals(
          List.of("weights", "src-step3-state"),
          all.stream().map(CheckpointInfo::getName).toList());
      assertEquals(
          List.of("src-step3-state"),
          stub
              .listCheckpoints(
                  ListCheckpointsRequest.newBuilder()
                      .setRunId("src")
                      .setKind(CheckpointKind.CHECKPOINT_KIND_STATE)
                      .build())
              .getCheckpointsList()
              .stream()
              .map(CheckpointInfo::getName)
              .toList());

      CheckpointInfo got =
          stub.getCheckpoint(GetCheckpointRequest.newBuilder().setName("weights").build())
              .getCheckpoint();
      assertTrue(got.getVerified());
      assertTrue(got.getManifestJson().contains("\"run_id\" : \"src\""), got.getManifestJson());
      assertEquals(eval.getFiles(0), got.getFiles(0));

      // Small chunks, then a resumed download from the middle.
      Path file = dir.resolve("weights/model.safetensors");
      byte[] onDisk = Files.readAllBytes(file);
      byte[] whole = download(stub, "weights", 0, 1000);
      assertArrayEquals(onDisk, whole);
      assertEquals(
          eval.getFiles(0).getSha256(),
          HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(whole)));
      byte[] tail = download(stub, "weights", 700, 0);
      assertEquals(onDisk.length - 700, tail.length);
      assertEquals(ByteString.copyFrom(onDisk, 700, tail.length), ByteString.copyFrom(tail));

      assertTrue(
          stub.deleteCheckpoint(DeleteCheckpointRequest.newBuilder().setName("weights").build())
              .getDeleted());
      assertFalse(Files.exists(dir.resolve("weights")));
      assertRefused(
          Status.Code.NOT_FOUND,
          "CHECKPOINT_NOT_FOUND",
          () -> stub.getCheckpoint(GetCheckpointRequest.newBuilder().setName("weights").build()));
      assertRefused(
          Status.Code.NOT_FOUND,
          "CHECKPOINT_NOT_FOUND",
          () ->
              stub.deleteCheckpoint(
                  DeleteCheckpointRequest.newBuilder().setName("weights").build()));
      assertFalse(
          stub.deleteCheckpoint(
                  DeleteCheckpointRequest.newBuilder()
                      .setName("weights")
                      .setAllowMissing(true)
                      .build())
              .getDeleted());
    }
  }

  @Test
  void anyCall_pathTraversalOrBadName_invalidArgument() throws Exception {
    try (OptimizerHarness h = new OptimizerHarness()) {
      CheckpointServiceBlockingStub stub = serve(h);
      for (String bad : List.of("../etc", "a/b", ".staging", "..", "", "Upper", "x".repeat(129))) {
        assertRefused(
            Status.Code.INVALID_ARGUMENT,
            "INVALID_CHECKPOINT_NAME",
            () -> stub.getCheckpoint(GetCheckpointRequest.newBuilder().setName(bad).build()));
        assertRefused(
            Status.Code.INVALID_ARGUMENT,
            "INVALID_CHECKPOINT_NAME",
            () -> stub.deleteCheckpoint(DeleteCheckpointRequest.newBuilder().setName(bad).build()));
        if (!bad.isEmpty()) {
          assertRefused(
              Status.Code.INVALID_ARGUMENT, "INVALID_CHECKPOINT_NAME", () -> saveX(stub, bad));
        }
      }
      assertTrue(Files.exists(dir.resolve(".staging")));
      try (var entries = Files.list(dir)) {
        assertEquals(2, entries.count());
      }
    }
  }

  @Test
  void getAndDownloadAndRestore_corruptedFile_dataLoss() throws Exception {
    try (OptimizerHarness h = new OptimizerHarness()) {
      CheckpointServiceBlockingStub stub = serve(h);
      saveX(stub, "weights");
      stub.saveStateCheckpoint(
          SaveStateCheckpointRequest.newBuilder().setRunId("src").setName("state").build());
      for (Path f :
          List.of(
              dir.resolve("weights/model.safetensors"),
              dir.resolve("state/optimizer-state.binpb"))) {
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
          raf.seek(raf.length() - 3);
          int b = raf.read();
          raf.seek(raf.length() - 3);
          raf.write(b ^ 0x40);
        }
      }
      var e =
          assertRefused(
              Status.Code.DATA_LOSS,
              "CHECKPOINT_CORRUPTED",
              () ->
                  stub.getCheckpoint(GetCheckpointRequest.newBuilder().setName("weights").build()));
      System.out.println("corrupted: " + e.getStatus().getDescription());
      assertRefused(
          Status.Code.DATA_LOSS, "CHECKPOINT_CORRUPTED", () -> download(stub, "weights", 0, 0));
      assertRefused(
          Status.Code.DATA_LOSS,
          "CHECKPOINT_CORRUPTED",
          () -> stub.restoreState(StateCheckpointTest.restore("state", "restored")));
      // A truncated manifest is detected too.
      Files.write(dir.resolve("state/manifest.json"), new byte[] {'{'});
      assertRefused(
          Status.Code.DATA_LOSS,
          "CHECKPOINT_CORRUPTED",
          () -> stub.getCheckpoint(GetCheckpointRequest.newBuilder().setName("state").build()));
    }
  }

  private CheckpointServiceBlockingStub serve(OptimizerHarness h) throws Exception {
    int a = h.startOptimizer();
    h.newRun(h.client(a), "src");
    OptimizerHarness.train(h.client(a), "src", 0, 3);
    return h.checkpointServer(a, dir, new Retention(0, Retention.BestMetric.NONE));
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

  private static byte[] download(
      CheckpointServiceBlockingStub stub, String name, long offset, int chunk) {
    Iterator<DownloadCheckpointResponse> it =
        stub.downloadCheckpoint(
            DownloadCheckpointRequest.newBuilder()
                .setName(name)
                .setOffset(offset)
                .setMaxChunkBytes(chunk)
                .build());
    DownloadCheckpointResponse first = it.next();
    assertTrue(first.hasHeader());
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    long expected = offset;
    while (it.hasNext()) {
      var c = it.next().getChunk();
      assertEquals(expected, c.getOffset());
      assertTrue(chunk == 0 || c.getData().size() <= chunk);
      expected += c.getData().size();
      out.writeBytes(c.getData().toByteArray());
    }
    assertEquals(first.getHeader().getSizeBytes(), expected);
    return out.toByteArray();
  }
}
