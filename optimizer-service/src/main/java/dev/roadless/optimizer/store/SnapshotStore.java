package dev.roadless.optimizer.store;

import dev.roadless.optimizer.run.RunSnapshot;
import dev.roadless.optimizer.server.SpecMapping;
import dev.roadless.proto.optimizer.v1.RunSpec;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.zip.CRC32C;
import java.util.zip.CheckedInputStream;
import java.util.zip.CheckedOutputStream;

/**
 * One snapshot file per run, {@code <run_id>.snapshot}, replaced atomically: written to a temporary
 * file, fsynced, renamed over the old one, and the directory fsynced. A crash at any point leaves
 * either the old or the new snapshot, never half of one.
 *
 * <p>Layout (big-endian, as DataOutputStream writes): magic {@code RLSNAP01}, run id (UTF), RunSpec
 * (length + protobuf bytes), initial-values digest (length + bytes), the optimizer state in {@link
 * StateCodec}'s format, and a CRC32C of everything before it.
 */
public final class SnapshotStore {
  private static final Logger LOG = Logger.getLogger(SnapshotStore.class.getName());
  private static final byte[] MAGIC = "RLSNAP01".getBytes(StandardCharsets.US_ASCII);
  private static final String SUFFIX = ".snapshot";

  private final Path dir;

  public SnapshotStore(Path dir) throws IOException {
    this.dir = Files.createDirectories(dir);
  }

  public Path dir() {
    return dir;
  }

  /** Writes a run's snapshot atomically. */
  public void write(RunSnapshot snapshot) throws IOException {
    Path target = dir.resolve(snapshot.id() + SUFFIX);
    Path tmp = Files.createTempFile(dir, "." + snapshot.id() + ".", ".tmp");
    try {
      try (FileChannel channel = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
        OutputStream raw = Channels.newOutputStream(channel);
        CheckedOutputStream checked =
            new CheckedOutputStream(new BufferedOutputStream(raw, 1 << 20), new CRC32C());
        DataOutputStream out = new DataOutputStream(checked);
        out.write(MAGIC);
        out.writeUTF(snapshot.id());
        byte[] spec = SpecMapping.toProto(snapshot.config()).toByteArray();
        out.writeInt(spec.length);
        out.write(spec);
        out.writeInt(snapshot.initialDigest().length);
        out.write(snapshot.initialDigest());
        StateCodec.write(snapshot.state(), out);
        out.flush();
        long crc = checked.getChecksum().getValue();
        new DataOutputStream(raw).writeLong(crc);
        raw.flush();
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

  /** Reads one snapshot, verifying its checksum; never returns a partial state. */
  public static RunSnapshot read(Path file) throws IOException {
    try (InputStream raw = new BufferedInputStream(Files.newInputStream(file), 1 << 20)) {
      CheckedInputStream checked = new CheckedInputStream(raw, new CRC32C());
      DataInputStream in = new DataInputStream(checked);
      byte[] magic = in.readNBytes(MAGIC.length);
      if (!java.util.Arrays.equals(magic, MAGIC)) {
        throw new IOException(file + " is not a Roadless snapshot");
      }
      String id = in.readUTF();
      RunSpec spec = RunSpec.parseFrom(readBlock(in, 64 << 20));
      byte[] digest = readBlock(in, 1024);
      var state = StateCodec.read(in);
      long expected = checked.getChecksum().getValue();
      long actual = new DataInputStream(raw).readLong();
      if (expected != actual) {
        throw new IOException(file + ": checksum mismatch, the snapshot is corrupt");
      }
      return new RunSnapshot(id, SpecMapping.config(spec), digest, state);
    } catch (EOFException e) {
      throw new IOException(file + " is truncated", e);
    }
  }

  /** Every readable snapshot in the directory. Unreadable ones are logged and set aside. */
  public List<RunSnapshot> readAll() throws IOException {
    List<RunSnapshot> out = new ArrayList<>();
    try (DirectoryStream<Path> files = Files.newDirectoryStream(dir)) {
      for (Path file : files) {
        String name = file.getFileName().toString();
        if (name.startsWith(".") && name.endsWith(".tmp")) {
          Files.deleteIfExists(file); // a write that never finished
        } else if (name.endsWith(SUFFIX)) {
          try {
            out.add(read(file));
          } catch (IOException | RuntimeException e) {
            Path aside = file.resolveSibling(name + ".corrupt");
            LOG.log(Level.SEVERE, "cannot read snapshot " + file + "; moved to " + aside, e);
            Files.move(file, aside, StandardCopyOption.REPLACE_EXISTING);
          }
        }
      }
    }
    return out;
  }

  /** Deletes a run's snapshot, if any. */
  public void delete(String runId) throws IOException {
    Files.deleteIfExists(dir.resolve(runId + SUFFIX));
    fsyncDirectory();
  }

  private static byte[] readBlock(DataInputStream in, int limit) throws IOException {
    int n = in.readInt();
    if (n < 0 || n > limit) {
      throw new IOException("implausible block length " + n);
    }
    return in.readNBytes(n);
  }

  private void fsyncDirectory() throws IOException {
    try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
      channel.force(true);
    }
  }
}
