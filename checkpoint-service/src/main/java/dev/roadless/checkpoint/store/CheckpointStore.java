package dev.roadless.checkpoint.store;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.proto.common.v1.ErrorReason;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.function.Function;
import java.util.logging.Logger;

/**
 * Checkpoints in a local directory, one sub-directory per checkpoint:
 *
 * <pre>
 * checkpoint-dir/
 *   NAME/manifest.json          the manifest; a checkpoint exists iff its directory does
 *   NAME/model.safetensors      (or optimizer-state.binpb)
 *   .staging/stage-UUID/        checkpoints being written; invisible, removed at start-up
 *   .trash/NAME-UUID/           checkpoints being deleted; invisible, removed at start-up
 * </pre>
 *
 * <p>A commit writes every file into a fresh staging directory, fsyncs each file, writes the
 * manifest (with the files' SHA-256, computed from what is on disk) and fsyncs it, fsyncs the
 * staging directory, renames it to {@code NAME} in one atomic step and fsyncs the checkpoint
 * directory. A crash at any point leaves either no checkpoint NAME or the whole of it, and never
 * touches other checkpoints. A delete is one rename into {@code .trash}, then the files go.
 * Checkpoints are immutable. Reads check the SHA-256 of what they read, and read only regular files
 * inside the store: a checkpoint directory or file that is a symbolic link, or whose real path lies
 * outside the store, is CHECKPOINT_CORRUPTED and is never opened; files are opened with {@code
 * O_NOFOLLOW}. Clean-up removes links, never what they point to.
 *
 * <p>Thread-safe within one process; two processes must not share a directory.
 */
public final class CheckpointStore {
  private static final Logger LOG = Logger.getLogger(CheckpointStore.class.getName());

  /** The manifest's file name inside a checkpoint. */
  public static final String MANIFEST = "manifest.json";

  private final Path dir;
  private final Path realDir;
  private final Path staging;
  private final Path trash;
  private final Object lock = new Object();

  /** Writes one file of a checkpoint being staged, at the given path (it may rewrite it). */
  @FunctionalInterface
  public interface FileWriter {
    void write(Path file) throws IOException;
  }

  /** A file to stage: its name inside the checkpoint, its format and how to write it. */
  public record StagedFile(String name, String format, FileWriter writer) {}

  /** The outcome of a commit: the stored manifest, and false when it already existed. */
  public record Commit(Manifest manifest, boolean created) {}

  /**
   * Opens (and creates) a checkpoint directory, removing what interrupted writes and deletes left.
   */
  public CheckpointStore(Path dir) throws IOException {
    this.dir = dir.toAbsolutePath().normalize();
    this.staging = this.dir.resolve(".staging");
    this.trash = this.dir.resolve(".trash");
    Files.createDirectories(this.dir);
    this.realDir = this.dir.toRealPath();
    for (Path leftovers : List.of(staging, trash)) {
      if (Files.exists(leftovers, LinkOption.NOFOLLOW_LINKS)
          && !Files.isDirectory(leftovers, LinkOption.NOFOLLOW_LINKS)) {
        // A link (or file) where the store keeps its own directory: remove the link itself,
        // never what it points to, and make the directory.
        LOG.warning(
            "replacing " + leftovers + ", which is not a directory (a link is not followed)");
        Files.delete(leftovers);
      }
      if (Files.isDirectory(leftovers, LinkOption.NOFOLLOW_LINKS)) {
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(leftovers)) {
          for (Path p : entries) {
            LOG.info("removing what an interrupted write or delete left: " + p);
            Durable.deleteTree(p);
          }
        }
      }
      Files.createDirectories(leftovers);
    }
    Durable.fsyncDirectory(this.dir);
  }

  public Path dir() {
    return dir;
  }

  /**
   * Stages the files, writes the manifest and commits atomically. If a checkpoint with this name
   * exists and holds the same run, kind, step and file digests, nothing changes and it is returned
   * with created = false; otherwise CHECKPOINT_EXISTS. Whatever fails, the staging directory is
   * removed and no checkpoint appears.
   *
   * @param files written in order into the staging directory
   * @param manifestOf makes the manifest once the files are written, from their entries (name,
   *     size, SHA-256 of what is on disk); it names the checkpoint
   * @throws RoadlessException STORAGE_UNAVAILABLE (I/O), CHECKPOINT_EXISTS,
   *     INVALID_CHECKPOINT_NAME, or whatever a writer or the manifest function throws
   */
  public Commit commit(
      List<StagedFile> files, Function<List<Manifest.FileEntry>, Manifest> manifestOf) {
    Path stage = staging.resolve("stage-" + UUID.randomUUID());
    String name = "?";
    try {
      Files.createDirectory(stage);
      List<Manifest.FileEntry> entries = new ArrayList<>();
      for (StagedFile f : files) {
        Path p = stage.resolve(f.name());
        f.writer().write(p);
        Durable.fsyncFile(p);
        entries.add(new Manifest.FileEntry(f.name(), Files.size(p), Durable.sha256(p), f.format()));
      }
      Manifest manifest = manifestOf.apply(List.copyOf(entries));
      name = CheckpointNames.check(manifest.name(), "name");
      Path mf = stage.resolve(MANIFEST);
      Files.write(mf, manifest.toJson(), StandardOpenOption.CREATE_NEW);
      Durable.fsyncFile(mf);
      Durable.fsyncDirectory(stage);
      synchronized (lock) {
        Path target = dir.resolve(name);
        if (Files.exists(target)) {
          Manifest existing = manifest(name);
          if (sameContent(existing, manifest)) {
            return new Commit(existing, false);
          }
          throw RoadlessException.of(
                  ErrorReason.ERROR_REASON_CHECKPOINT_EXISTS,
                  "checkpoint '" + name + "' exists with other contents; choose another name")
              .with("checkpoint", name)
              .build();
        }
        Files.move(stage, target, StandardCopyOption.ATOMIC_MOVE);
        Durable.fsyncDirectory(dir);
      }
      return new Commit(manifest, true);
    } catch (IOException | UncheckedIOException e) {
      throw storageFailure("cannot write checkpoint '" + name + "' in " + dir, e);
    } finally {
      try {
        Durable.deleteTree(stage);
      } catch (IOException e) {
        LOG.warning("cannot remove staging directory " + stage + ": " + e);
      }
    }
  }

  /**
   * The manifest of a checkpoint, without checking its data files.
   *
   * @throws RoadlessException INVALID_CHECKPOINT_NAME, CHECKPOINT_NOT_FOUND, CHECKPOINT_CORRUPTED
   */
  public Manifest manifest(String name) {
    byte[] json;
    try {
      json = Durable.readAll(readable(name, MANIFEST));
    } catch (NoSuchFileException e) {
      throw notFound(name);
    } catch (IOException e) {
      throw storageFailure("cannot read checkpoint '" + name + "'", e);
    }
    Manifest m;
    try {
      m = Manifest.parse(json);
    } catch (IOException e) {
      throw corrupted(name, MANIFEST, "its manifest cannot be parsed: " + e.getMessage());
    }
    if (!m.name().equals(name) || m.files().isEmpty()) {
      throw corrupted(name, MANIFEST, "its manifest describes '" + m.name() + "'");
    }
    return m;
  }

  /**
   * The manifest, after checking the size and SHA-256 of every data file.
   *
   * @throws RoadlessException as {@link #manifest}, CHECKPOINT_CORRUPTED on any mismatch
   */
  public Manifest verified(String name) {
    Manifest m = manifest(name);
    for (Manifest.FileEntry f : m.files()) {
      verify(name, f);
    }
    return m;
  }

  /** Checks one file of a checkpoint against its manifest entry. */
  public void verify(String name, Manifest.FileEntry f) {
    try {
      Path p = readable(name, f.name());
      long size =
          Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).size();
      String sha = Durable.sha256(p);
      if (size != f.sizeBytes() || !sha.equals(f.sha256())) {
        throw corrupted(
            name,
            f.name(),
            f.name()
                + " has "
                + size
                + " bytes with SHA-256 "
                + sha
                + "; the manifest says "
                + f.sizeBytes()
                + " bytes, "
                + f.sha256());
      }
    } catch (NoSuchFileException e) {
      throw corrupted(name, f.name(), f.name() + " is missing");
    } catch (IOException e) {
      throw storageFailure("cannot read checkpoint '" + name + "'", e);
    }
  }

  /** The path of a file of a checkpoint ({@code fileName} as listed in its manifest). */
  public Path path(String name, String fileName) {
    CheckpointNames.check(name, "name");
    Path p = dir.resolve(name).resolve(fileName).normalize();
    if (!p.getParent().equals(dir.resolve(name))) {
      throw new IllegalArgumentException("file name escapes the checkpoint: " + fileName);
    }
    return p;
  }

  /**
   * The path of a file of a checkpoint to read: neither the checkpoint's directory nor the file is
   * a symbolic link, the file is a regular file, and its real path lies inside the store. Open it
   * with {@code LinkOption.NOFOLLOW_LINKS}.
   *
   * @throws NoSuchFileException if the checkpoint or the file does not exist
   * @throws RoadlessException CHECKPOINT_CORRUPTED otherwise (the message names the file only)
   */
  public Path readable(String name, String fileName) throws IOException {
    Path p = path(name, fileName);
    BasicFileAttributes d =
        Files.readAttributes(p.getParent(), BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    BasicFileAttributes f =
        Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    if (!d.isDirectory() || !f.isRegularFile() || !p.toRealPath().startsWith(realDir)) {
      throw corrupted(
          name, fileName, fileName + " is not a regular file inside the checkpoint directory");
    }
    return p;
  }

  /** Every readable checkpoint's manifest, unordered. Unreadable ones are logged and skipped. */
  public List<Manifest> list() {
    List<Manifest> out = new ArrayList<>();
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
      for (Path p : entries) {
        String name = p.getFileName().toString();
        if (!CheckpointNames.isValid(name) || !Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
          continue;
        }
        try {
          out.add(manifest(name));
        } catch (RoadlessException e) {
          if (e.reason() != ErrorReason.ERROR_REASON_CHECKPOINT_NOT_FOUND) {
            LOG.warning("skipping checkpoint " + name + ": " + e.getMessage());
          }
        }
      }
    } catch (IOException e) {
      throw storageFailure("cannot list " + dir, e);
    }
    return out;
  }

  /** The manifest if the checkpoint exists. */
  public Optional<Manifest> find(String name) {
    try {
      return Optional.of(manifest(name));
    } catch (RoadlessException e) {
      if (e.reason() == ErrorReason.ERROR_REASON_CHECKPOINT_NOT_FOUND) {
        return Optional.empty();
      }
      throw e;
    }
  }

  /**
   * Deletes a checkpoint: one atomic rename makes it disappear, then its files are removed.
   *
   * @return false when it did not exist and {@code allowMissing}
   * @throws RoadlessException CHECKPOINT_NOT_FOUND (unless allowMissing), STORAGE_UNAVAILABLE
   */
  public boolean delete(String name, boolean allowMissing) {
    CheckpointNames.check(name, "name");
    Path gone = trash.resolve(name + "-" + UUID.randomUUID());
    try {
      synchronized (lock) {
        Path target = dir.resolve(name);
        if (!Files.isDirectory(target)) {
          if (allowMissing) {
            return false;
          }
          throw notFound(name);
        }
        Files.move(target, gone, StandardCopyOption.ATOMIC_MOVE);
        Durable.fsyncDirectory(dir);
      }
      Durable.deleteTree(gone);
      return true;
    } catch (IOException e) {
      throw storageFailure("cannot delete checkpoint '" + name + "'", e);
    }
  }

  private static boolean sameContent(Manifest a, Manifest b) {
    return a.runId().equals(b.runId())
        && a.kind().equals(b.kind())
        && a.step() == b.step()
        && a.files().size() == b.files().size()
        && a.files().stream()
            .allMatch(
                f ->
                    b.files().stream()
                        .anyMatch(g -> g.name().equals(f.name()) && g.sha256().equals(f.sha256())));
  }

  static RoadlessException notFound(String name) {
    return RoadlessException.of(
            ErrorReason.ERROR_REASON_CHECKPOINT_NOT_FOUND, "no checkpoint named '" + name + "'")
        .with("checkpoint", name)
        .build();
  }

  static RoadlessException corrupted(String name, String file, String why) {
    return RoadlessException.of(
            ErrorReason.ERROR_REASON_CHECKPOINT_CORRUPTED,
            "checkpoint '" + name + "' is corrupted: " + why)
        .with("checkpoint", name)
        .with("file", file)
        .build();
  }

  private static RoadlessException storageFailure(String what, Exception e) {
    LOG.warning(what + ": " + e);
    return new RoadlessException(ErrorReason.ERROR_REASON_STORAGE_UNAVAILABLE, what + ": " + e);
  }
}
