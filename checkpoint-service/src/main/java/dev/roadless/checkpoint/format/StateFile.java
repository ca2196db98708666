package dev.roadless.checkpoint.format;

import dev.roadless.proto.optimizer.v1.ExportStateResponse;
import dev.roadless.proto.optimizer.v1.ImportStateRequest;
import dev.roadless.proto.optimizer.v1.StateHeader;
import java.io.BufferedInputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.NoSuchElementException;

/**
 * The file of a state checkpoint ({@code optimizer-state.binpb}): the optimizer's ExportState
 * stream exactly as it arrived, each {@code roadless.optimizer.v1.ExportStateResponse} prefixed
 * with its varint length ({@code writeDelimitedTo} / {@code parseDelimitedFrom}): one header (spec,
 * live hyperparameters, schedule scalars), the state chunks (z, x, moments of every tensor), one
 * end message. Any protobuf runtime reads it; ImportState takes the same messages back.
 */
public final class StateFile {
  /** The format string recorded in manifests. */
  public static final String FORMAT =
      "roadless.optimizer.v1.ExportStateResponse, varint-length-delimited";

  private StateFile() {}

  /** Appends one message. */
  public static void write(ExportStateResponse message, OutputStream out) throws IOException {
    message.writeDelimitedTo(out);
  }

  /** The header (first message) of a state file. */
  public static StateHeader header(Path file) throws IOException {
    try (Reader r = new Reader(file)) {
      return r.header();
    }
  }

  /** One message of the file as an ImportState message, the header renamed to {@code runId}. */
  public static ImportStateRequest toImport(ExportStateResponse m, String runId) {
    return switch (m.getItemCase()) {
      case HEADER ->
          ImportStateRequest.newBuilder()
              .setHeader(m.getHeader().toBuilder().setRunId(runId))
              .build();
      case CHUNK -> ImportStateRequest.newBuilder().setChunk(m.getChunk()).build();
      case END -> ImportStateRequest.newBuilder().setCommit(m.getEnd()).build();
      default -> throw new IllegalStateException("empty message in a state file");
    };
  }

  /**
   * Reads the messages one at a time (a state file can be far larger than memory should hold) and
   * checks the framing: a header first, an end message last, nothing after it.
   */
  public static final class Reader implements Iterator<ExportStateResponse>, Closeable {
    private final InputStream in;
    private final StateHeader header;
    private ExportStateResponse next;
    private boolean ended;

    public Reader(Path file) throws IOException {
      this.in = new BufferedInputStream(Files.newInputStream(file), 1 << 16);
      ExportStateResponse first = ExportStateResponse.parseDelimitedFrom(in);
      if (first == null || !first.hasHeader()) {
        in.close();
        throw new IOException("a state file starts with a header");
      }
      this.header = first.getHeader();
      this.next = first;
    }

    public StateHeader header() {
      return header;
    }

    @Override
    public boolean hasNext() {
      if (next == null && !ended) {
        try {
          next = ExportStateResponse.parseDelimitedFrom(in);
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
        if (next == null) {
          throw new UncheckedIOException(
              new IOException("state file ends without its end message"));
        }
      }
      return next != null;
    }

    @Override
    public ExportStateResponse next() {
      if (!hasNext()) {
        throw new NoSuchElementException();
      }
      ExportStateResponse m = next;
      next = null;
      if (m.hasEnd()) {
        ended = true;
        try {
          if (in.read() != -1) {
            throw new UncheckedIOException(new IOException("data after the end message"));
          }
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      } else if (m.hasHeader() && m.getHeader() != header) {
        throw new UncheckedIOException(new IOException("a second header in a state file"));
      }
      return m;
    }

    @Override
    public void close() throws IOException {
      in.close();
    }
  }
}
