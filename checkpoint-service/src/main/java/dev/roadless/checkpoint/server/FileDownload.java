package dev.roadless.checkpoint.server;

import com.google.protobuf.UnsafeByteOperations;
import dev.roadless.common.error.Errors;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.proto.checkpoint.v1.CheckpointFile;
import dev.roadless.proto.checkpoint.v1.DownloadCheckpointResponse;
import dev.roadless.proto.checkpoint.v1.FileChunk;
import dev.roadless.proto.common.v1.ErrorReason;
import io.grpc.stub.ServerCallStreamObserver;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * Streams one file as a header and chunks, only while the transport is ready (a large file never
 * piles up in memory), hashing every byte of the file as it goes: if the SHA-256 at the end is not
 * the header's, the stream ends with DATA_LOSS (CHECKPOINT_CORRUPTED) instead of completing.
 */
final class FileDownload implements Runnable {
  private final ServerCallStreamObserver<DownloadCheckpointResponse> out;
  private final FileChannel channel;
  private final MessageDigest digest;
  private final CheckpointFile header;
  private final String checkpoint;
  private final int chunkBytes;
  private final Runnable onClose;
  private long position;
  private boolean done;

  private FileDownload(
      ServerCallStreamObserver<DownloadCheckpointResponse> out,
      FileChannel channel,
      CheckpointFile header,
      String checkpoint,
      int chunkBytes,
      Runnable onClose)
      throws NoSuchAlgorithmException {
    this.out = out;
    this.channel = channel;
    this.digest = MessageDigest.getInstance("SHA-256");
    this.header = header;
    this.checkpoint = checkpoint;
    this.chunkBytes = chunkBytes;
    this.onClose = onClose;
  }

  /**
   * Sends the header, then the bytes from {@code offset} on as the client is ready for them: a
   * chunk is read only when the transport is ready, so a stalled reader holds at most one. {@code
   * onClose} runs once the download ends, however it ends (completed, failed, cancelled); if this
   * throws, the caller cleans up.
   */
  static void start(
      ServerCallStreamObserver<DownloadCheckpointResponse> out,
      Path file,
      CheckpointFile header,
      String checkpoint,
      long offset,
      int chunkBytes,
      Runnable onClose)
      throws IOException, NoSuchAlgorithmException {
    FileChannel channel =
        FileChannel.open(file, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS);
    FileDownload d;
    try {
      d = new FileDownload(out, channel, header, checkpoint, chunkBytes, onClose);
      d.skipTo(offset);
    } catch (IOException | NoSuchAlgorithmException e) {
      channel.close();
      throw e;
    }
    out.setOnCancelHandler(d::close);
    out.onNext(DownloadCheckpointResponse.newBuilder().setHeader(header).build());
    out.setOnReadyHandler(d);
    d.run();
  }

  /** The bytes before the offset are hashed, not sent. */
  private void skipTo(long offset) throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(1 << 16);
    while (position < offset) {
      buf.clear().limit((int) Math.min(buf.capacity(), offset - position));
      read(buf);
      digest.update(buf.flip());
    }
  }

  @Override
  public synchronized void run() {
    try {
      while (!done && out.isReady()) {
        if (position == header.getSizeBytes()) {
          finish();
          return;
        }
        ByteBuffer buf =
            ByteBuffer.allocate((int) Math.min(chunkBytes, header.getSizeBytes() - position));
        long at = position;
        read(buf);
        buf.flip();
        digest.update(buf.duplicate());
        out.onNext(
            DownloadCheckpointResponse.newBuilder()
                .setChunk(
                    FileChunk.newBuilder()
                        .setOffset(at)
                        .setData(UnsafeByteOperations.unsafeWrap(buf)))
                .build());
      }
    } catch (IOException | RuntimeException e) {
      fail(
          e instanceof RoadlessException
              ? e
              : corrupted("cannot read " + header.getName() + ": " + e));
    }
  }

  private void read(ByteBuffer buf) throws IOException {
    while (buf.hasRemaining()) {
      int n = channel.read(buf, position);
      if (n < 0) {
        throw corrupted(header.getName() + " ended at " + position + " bytes");
      }
      position += n;
    }
  }

  private void finish() {
    done = true;
    close();
    String sha = HexFormat.of().formatHex(digest.digest());
    if (!sha.equals(header.getSha256())) {
      out.onError(
          Errors.toStatus(
              corrupted(header.getName() + " changed while it was sent: SHA-256 " + sha)));
    } else {
      out.onCompleted();
    }
  }

  private void fail(Throwable t) {
    if (!done) {
      done = true;
      close();
      out.onError(Errors.toStatus(t));
    }
  }

  private RoadlessException corrupted(String why) {
    return RoadlessException.of(
            ErrorReason.ERROR_REASON_CHECKPOINT_CORRUPTED,
            "checkpoint '" + checkpoint + "' is corrupted: " + why)
        .with("checkpoint", checkpoint)
        .with("file", header.getName())
        .build();
  }

  private void close() {
    try {
      channel.close();
    } catch (IOException ignored) {
      // nothing was written through it
    } finally {
      onClose.run();
    }
  }
}
