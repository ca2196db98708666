package dev.roadless.optimizer.store;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.state.StateCodec;
import dev.roadless.optimizer.state.StateReader;
import dev.roadless.optimizer.state.StateWriter;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.optimizer.v1.ExportStateResponse;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One snapshot file per run, {@code <run_id>.snapshot}, replaced atomically: written to a temporary
 * file, fsynced, renamed over the old one, and the directory fsynced. A crash at any point leaves
 * either the old or the new snapshot, never half of one.
 *
 * <p>A snapshot is the run's state stream in {@link StateCodec}'s form (the header carries the run
 * id, its spec and the initial-values digest), checksummed by its end message. The store streams
 * messages in and out; mapping them to and from a run is the caller's {@link Decoder}.
 */
public final class SnapshotStore {
  private static final Logger LOG = Logger.getLogger(SnapshotStore.class.getName());
  private static final String SUFFIX = ".snapshot";
  private static final int BUFFER = 1 << 20;

  /** Turns one verified state stream into a value; throws if the stream or its content is bad. */
  @FunctionalInterface
  public interface Decoder<T> {
    T decode(StateReader reader) throws IOException;
  }

  private final Path dir;

  public SnapshotStore(Path dir) throws IOException {
    this.dir = Files.createDirectories(dir);
  }

  public Path dir() {
    return dir;
  }

  /** Writes a run's snapshot atomically from its state messages (header, chunks, end). */
  public void write(String runId, Iterator<ExportStateResponse> messages) throws IOException {
    Path target = dir.resolve(runId + SUFFIX);
    Path tmp = Files.createTempFile(dir, "." + runId + ".", ".tmp");
    try {
      try (FileChannel channel = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
        OutputStream out = new BufferedOutputStream(Channels.newOutputStream(channel), BUFFER);
        StateWriter writer = StateCodec.writer(out);
        while (messages.hasNext()) {
          writer.write(messages.next());
        }
        if (!writer.ended()) {
          throw new IOException("the state of run " + runId + " ended without its end message");
        }
        out.flush();
        channel.force(true);
      }
      try {
        Files.move(
            tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } catch (AtomicMoveNotSupportedException e) {
        throw new IOException("the snapshot directory does not support atomic rename: " + dir, e);
      }
      fsyncDirectory();
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  /**
   * Reads one snapshot, verifying it (see {@link StateCodec}); never returns a partial state.
   *
   * @throws IOException if the file is truncated, corrupted or not a snapshot
   */
  public static <T> T read(Path file, Decoder<T> decoder) throws IOException {
    try (InputStream in = new BufferedInputStream(Files.newInputStream(file), BUFFER)) {
      StateReader reader = StateCodec.reader(in, Files.size(file));
      T value = decoder.decode(reader);
      if (reader.next() != null || in.read() != -1) {
        throw new IOException(file + ": data after the end of the snapshot");
      }
      return value;
    } catch (IOException e) {
      throw new IOException(file + ": " + e.getMessage(), e);
    }
  }

  /** A run's snapshot, decoded, or null when it has none. */
  public <T> T read(String runId, Decoder<T> decoder) throws IOException {
    Path file = dir.resolve(runId + SUFFIX);
    return Files.isRegularFile(file, java.nio.file.LinkOption.NOFOLLOW_LINKS)
        ? read(file, decoder)
        : null;
  }

  /**
   * Every snapshot in the directory that {@code decoder} takes. One it cannot read or restore (a
   * truncated or corrupt file, a non-finite state, a step counter out of range) is logged and set
   * aside as {@code <run_id>.snapshot.corrupt}, and the others go on; one refused for memory
   * ({@code MEMORY_BUDGET_EXCEEDED}) stays where it is for the next start.
   */
  public <T> List<T> readAll(Decoder<T> decoder) throws IOException {
    List<T> out = new ArrayList<>();
    try (DirectoryStream<Path> files = Files.newDirectoryStream(dir)) {
      for (Path file : files) {
        String name = file.getFileName().toString();
        if (name.startsWith(".") && name.endsWith(".tmp")) {
          Files.deleteIfExists(file); // a write that never finished
        } else if (name.endsWith(SUFFIX)) {
          try {
            out.add(read(file, decoder));
          } catch (RoadlessException e) {
            if (e.reason() != ErrorReason.ERROR_REASON_MEMORY_BUDGET_EXCEEDED) {
              setAside(file, e);
            } else {
              LOG.log(Level.SEVERE, "snapshot " + file + " not restored: " + e.getMessage());
            }
          } catch (IOException | RuntimeException e) {
            setAside(file, e);
          }
        }
      }
    }
    return out;
  }

  private static void setAside(Path file, Exception e) throws IOException {
    Path aside = file.resolveSibling(file.getFileName() + ".corrupt");
    LOG.log(Level.SEVERE, "cannot restore snapshot " + file + "; moved to " + aside, e);
    Files.move(file, aside, StandardCopyOption.REPLACE_EXISTING);
  }

  /** Deletes a run's snapshot, if any. */
  public void delete(String runId) throws IOException {
    Files.deleteIfExists(dir.resolve(runId + SUFFIX));
    fsyncDirectory();
  }

  private void fsyncDirectory() throws IOException {
    try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
      channel.force(true);
    }
  }
}
