package dev.roadless.checkpoint.server;

import dev.roadless.checkpoint.service.Checkpoints;
import dev.roadless.checkpoint.store.CheckpointNames;
import dev.roadless.checkpoint.store.CheckpointStore;
import dev.roadless.checkpoint.store.Manifest;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.proto.checkpoint.v1.CheckpointFile;
import dev.roadless.proto.checkpoint.v1.CheckpointServiceGrpc;
import dev.roadless.proto.checkpoint.v1.DeleteCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.DeleteCheckpointResponse;
import dev.roadless.proto.checkpoint.v1.DownloadCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.DownloadCheckpointResponse;
import dev.roadless.proto.checkpoint.v1.GetCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.GetCheckpointResponse;
import dev.roadless.proto.checkpoint.v1.ListCheckpointsRequest;
import dev.roadless.proto.checkpoint.v1.ListCheckpointsResponse;
import dev.roadless.proto.checkpoint.v1.RestoreStateRequest;
import dev.roadless.proto.checkpoint.v1.RestoreStateResponse;
import dev.roadless.proto.checkpoint.v1.SaveCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.SaveCheckpointResponse;
import dev.roadless.proto.checkpoint.v1.SaveStateCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.SaveStateCheckpointResponse;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.optimizer.v1.ImportStateResponse;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * Thin gRPC adapter over {@link Checkpoints}; failures are thrown and mapped in one interceptor.
 */
public final class CheckpointGrpcService extends CheckpointServiceGrpc.CheckpointServiceImplBase {
  /** Largest download chunk: 1 MiB, well below gRPC's default 4 MiB message limit. */
  static final int MAX_CHUNK_BYTES = 1 << 20;

  /** Default of {@code max-concurrent-downloads}. */
  public static final int DEFAULT_MAX_DOWNLOADS = 64;

  /** Default of {@code max-concurrent-transfers}. */
  public static final int DEFAULT_MAX_TRANSFERS = 4;

  private final Checkpoints checkpoints;
  private final CallLimit downloads;
  private final CallLimit transfers;

  public CheckpointGrpcService(Checkpoints checkpoints) {
    this(checkpoints, DEFAULT_MAX_DOWNLOADS, DEFAULT_MAX_TRANSFERS);
  }

  /**
   * @param maxDownloads downloads streaming at once; more get CONCURRENCY_LIMIT
   * @param maxTransfers state transfers (SaveStateCheckpoint, RestoreState) at once; more get
   *     CONCURRENCY_LIMIT
   */
  public CheckpointGrpcService(Checkpoints checkpoints, int maxDownloads, int maxTransfers) {
    this.checkpoints = checkpoints;
    this.downloads = new CallLimit("checkpoint downloads", maxDownloads);
    this.transfers = new CallLimit("state transfers", maxTransfers);
  }

  @Override
  public void saveCheckpoint(
      SaveCheckpointRequest request, StreamObserver<SaveCheckpointResponse> responses) {
    Checkpoints.Saved saved = checkpoints.saveEval(request);
    responses.onNext(
        SaveCheckpointResponse.newBuilder()
            .setCreated(saved.commit().created())
            .setCheckpoint(InfoMapping.info(saved.commit().manifest(), false, false))
            .addAllRetentionDeleted(saved.retentionDeleted())
            .build());
    responses.onCompleted();
  }

  @Override
  public void saveStateCheckpoint(
      SaveStateCheckpointRequest request, StreamObserver<SaveStateCheckpointResponse> responses) {
    Checkpoints.Saved saved;
    try (CallLimit.Permit p = transfers.acquire()) {
      saved = checkpoints.saveState(request);
    }
    responses.onNext(
        SaveStateCheckpointResponse.newBuilder()
            .setCreated(saved.commit().created())
            .setCheckpoint(InfoMapping.info(saved.commit().manifest(), false, false))
            .addAllRetentionDeleted(saved.retentionDeleted())
            .build());
    responses.onCompleted();
  }

  @Override
  public void restoreState(
      RestoreStateRequest request, StreamObserver<RestoreStateResponse> responses) {
    ImportStateResponse r;
    try (CallLimit.Permit p = transfers.acquire()) {
      r = checkpoints.restore(request);
    }
    responses.onNext(
        RestoreStateResponse.newBuilder()
            .setCreated(r.getCreated())
            .setStatus(r.getStatus())
            .build());
    responses.onCompleted();
  }

  @Override
  public void listCheckpoints(
      ListCheckpointsRequest request, StreamObserver<ListCheckpointsResponse> responses) {
    ListCheckpointsResponse.Builder out = ListCheckpointsResponse.newBuilder();
    for (Manifest m : checkpoints.list(request.getRunId(), request.getKind())) {
      out.addCheckpoints(InfoMapping.info(m, false, false));
    }
    responses.onNext(out.build());
    responses.onCompleted();
  }

  @Override
  public void getCheckpoint(
      GetCheckpointRequest request, StreamObserver<GetCheckpointResponse> responses) {
    Manifest m = checkpoints.verified(request.getName());
    responses.onNext(
        GetCheckpointResponse.newBuilder().setCheckpoint(InfoMapping.info(m, true, true)).build());
    responses.onCompleted();
  }

  @Override
  public void downloadCheckpoint(
      DownloadCheckpointRequest request, StreamObserver<DownloadCheckpointResponse> responses) {
    String name = CheckpointNames.check(request.getName(), "name");
    int chunk = request.getMaxChunkBytes() == 0 ? MAX_CHUNK_BYTES : request.getMaxChunkBytes();
    if (chunk < 1 || chunk > MAX_CHUNK_BYTES) {
      throw invalid("max_chunk_bytes", "max_chunk_bytes must be in [1, " + MAX_CHUNK_BYTES + "]");
    }
    // Taken before the file is hashed: verifying is as costly as sending.
    CallLimit.Permit permit = downloads.acquire();
    try {
      stream(
          name,
          request,
          chunk,
          (ServerCallStreamObserver<DownloadCheckpointResponse>) responses,
          permit);
    } catch (RuntimeException e) {
      permit.close();
      throw e;
    }
  }

  private void stream(
      String name,
      DownloadCheckpointRequest request,
      int chunk,
      ServerCallStreamObserver<DownloadCheckpointResponse> responses,
      CallLimit.Permit permit) {
    CheckpointStore store = checkpoints.store();
    Manifest m = store.manifest(name);
    CheckpointFile header;
    if (request.getFile().isEmpty() || request.getFile().equals(m.dataFile().name())) {
      store.verify(name, m.dataFile());
      header = InfoMapping.file(m.dataFile());
    } else if (request.getFile().equals(CheckpointStore.MANIFEST)) {
      header = manifestFile(store, name);
    } else {
      throw invalid(
          "file", "file must be empty, " + m.dataFile().name() + " or " + CheckpointStore.MANIFEST);
    }
    if (request.getOffset() < 0 || request.getOffset() > header.getSizeBytes()) {
      throw invalid("offset", "offset must be in [0, " + header.getSizeBytes() + "]");
    }
    try {
      FileDownload.start(
          responses,
          store.readable(name, header.getName()),
          header,
          name,
          request.getOffset(),
          chunk,
          permit::close);
    } catch (IOException | NoSuchAlgorithmException e) {
      throw new RoadlessException(
          ErrorReason.ERROR_REASON_STORAGE_UNAVAILABLE, "cannot read checkpoint '" + name + "'");
    }
  }

  @Override
  public void deleteCheckpoint(
      DeleteCheckpointRequest request, StreamObserver<DeleteCheckpointResponse> responses) {
    boolean deleted = checkpoints.delete(request.getName(), request.getAllowMissing());
    responses.onNext(DeleteCheckpointResponse.newBuilder().setDeleted(deleted).build());
    responses.onCompleted();
  }

  /** The manifest is described by itself: its SHA-256 is computed now. */
  private static CheckpointFile manifestFile(CheckpointStore store, String name) {
    try (InputStream in =
        Files.newInputStream(
            store.readable(name, CheckpointStore.MANIFEST), LinkOption.NOFOLLOW_LINKS)) {
      byte[] bytes = in.readAllBytes();
      byte[] sha = java.security.MessageDigest.getInstance("SHA-256").digest(bytes);
      return CheckpointFile.newBuilder()
          .setName(CheckpointStore.MANIFEST)
          .setSizeBytes(bytes.length)
          .setSha256(HexFormat.of().formatHex(sha))
          .setFormat("json")
          .build();
    } catch (IOException | NoSuchAlgorithmException e) {
      throw new RoadlessException(
          ErrorReason.ERROR_REASON_STORAGE_UNAVAILABLE,
          "cannot read the manifest of checkpoint '" + name + "'");
    }
  }

  private static RoadlessException invalid(String field, String message) {
    return RoadlessException.of(ErrorReason.ERROR_REASON_INVALID_CHECKPOINT_REQUEST, message)
        .with("field", field)
        .build();
  }
}
