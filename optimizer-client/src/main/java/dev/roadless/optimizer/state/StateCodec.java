package dev.roadless.optimizer.state;

import dev.roadless.proto.optimizer.v1.StateHeader;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The stored form of a run's optimizer state: the {@code roadless.optimizer.v1.ExportStateResponse}
 * messages of an ExportState stream, each prefixed with its varint length (protobuf's {@code
 * writeDelimitedTo} framing, which every protobuf runtime reads):
 *
 * <pre>
 *   header   StateHeader: run id, RunSpec (tensors, groups, variant), every group's schedule
 *            scalars and live hyperparameters as exact doubles, the slots that follow,
 *            format_version 1; in optimizer snapshots also the initial-values digest
 *   chunks   StateChunk: slot (z, x, exp_avg_sq, exp_avg) + float32 little-endian TensorChunk,
 *            every slot of every tensor covered exactly once
 *   end      StreamCommit: total_elements of all chunks, and crc32c, the CRC32C of every byte
 *            of the stream before the end message's length prefix
 * </pre>
 *
 * <p>A reader ({@link StateReader}) refuses, with an {@link IOException}, a stream that is
 * truncated, has a message longer than the bytes left or than {@link #MAX_MESSAGE_BYTES}, a header
 * declaring more array bytes than the stream still holds, chunks not matching the header, or a
 * checksum or element count that does not match. It hands out the end message only after every
 * check passed, so a consumer that commits on the end message never commits half a state, and a
 * corrupted size never causes an allocation larger than the file.
 */
public final class StateCodec {
  /** The value of {@code StateHeader.format_version} this codec writes and reads. */
  public static final int FORMAT_VERSION = 1;

  /** The format string recorded in checkpoint manifests. */
  public static final String FORMAT =
      "roadless.optimizer.v1.ExportStateResponse, varint-length-delimited, CRC32C in the end";

  /** The longest single message a reader accepts (a header with a large spec, or a chunk). */
  public static final int MAX_MESSAGE_BYTES = 64 << 20;

  private StateCodec() {}

  /** A writer appending one state stream to {@code out}; the caller owns and closes {@code out}. */
  public static StateWriter writer(OutputStream out) {
    return new StateWriter(out);
  }

  /**
   * A reader of one state stream from {@code in}; it reads no byte after the end message.
   *
   * @param availableBytes how many bytes {@code in} can hold at most (a file's size), bounding
   *     every allocation; {@link Long#MAX_VALUE} if unknown
   */
  public static StateReader reader(InputStream in, long availableBytes) {
    return new StateReader(in, availableBytes);
  }

  /** The header of a stored state file, checked as far as a header can be without the arrays. */
  public static StateHeader header(Path file) throws IOException {
    try (InputStream in = new BufferedInputStream(Files.newInputStream(file), 1 << 16)) {
      return reader(in, Files.size(file)).header();
    }
  }
}
