package dev.roadless.optimizer.transport;

import dev.roadless.optimizer.shm.SharedSegment;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SecureDirectoryStream;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.UserPrincipal;
import java.util.logging.Logger;
import java.util.regex.Pattern;

/**
 * The servers' shared-memory directories ({@code <base>/roadless-optimizer-<pid>}): creating this
 * server's own, and removing a server's without ever following a symbolic link. A shared-memory
 * base such as {@code /dev/shm} is writable by every local user, so anything in it may be a link
 * planted to make the clean-up delete files elsewhere. Removal therefore works on directory file
 * descriptors ({@link SecureDirectoryStream}: {@code openat}/{@code unlinkat} with {@code
 * O_NOFOLLOW}): it enters only a real directory owned by this user, deletes in it only regular
 * files owned by this user and named as the server names them (the probe and {@code
 * RUN.REPLICA.N.seg}), never recurses, and removes the directory only when that left it empty.
 * Links, other files and other users' entries stay where they are.
 */
final class SegmentDirectories {
  private static final Logger LOG = Logger.getLogger(SegmentDirectories.class.getName());
  static final String PREFIX = "roadless-optimizer-";
  private static final Pattern OURS =
      Pattern.compile("probe|probe\\.tmp|[a-z0-9][a-z0-9._-]{0,62}\\.[0-9]+\\.[0-9]+\\.seg");

  private SegmentDirectories() {}

  /**
   * Creates this server's directory (owner-only) if needed and checks that it is a real directory
   * of this user, not a link planted under the name this process would use.
   */
  static void createOwn(Path dir) throws IOException {
    Files.createDirectories(dir, SharedSegment.ownerOnly(true));
    PosixFileAttributes a = attributes(dir);
    if (a != null && (!a.isDirectory() || !owned(a.owner()))) {
      throw new IOException(dir + " is not a directory of this user");
    }
  }

  /** Removes the directories of servers that no longer run, and a stale one of this pid. */
  static void sweep(Path base) {
    if (!Files.isDirectory(base)) {
      return;
    }
    long self = ProcessHandle.current().pid();
    try (DirectoryStream<Path> all = Files.newDirectoryStream(base, PREFIX + "*")) {
      for (Path p : all) {
        long pid;
        try {
          pid = Long.parseLong(p.getFileName().toString().substring(PREFIX.length()));
        } catch (NumberFormatException e) {
          continue;
        }
        boolean alive =
            pid != self && ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
        if (!alive) {
          remove(base, p.getFileName());
        }
      }
    } catch (IOException | RuntimeException e) {
      LOG.warning("cannot sweep " + base + ": " + e.getMessage());
    }
  }

  /**
   * Removes directory {@code name} of {@code base} as described in the class comment. Without
   * {@link SecureDirectoryStream} (not Linux) it leaves the directory alone and says so.
   */
  static void remove(Path base, Path name) {
    try (DirectoryStream<Path> parent = Files.newDirectoryStream(base)) {
      if (!(parent instanceof SecureDirectoryStream<Path> secure)) {
        LOG.warning("no safe way to remove " + base.resolve(name) + " here; leaving it");
        return;
      }
      PosixFileAttributes a = attributes(secure, name);
      if (a == null) {
        return; // gone already
      }
      if (!a.isDirectory() || !owned(a.owner())) {
        LOG.warning(
            "leaving "
                + base.resolve(name)
                + ": "
                + (a.isSymbolicLink() ? "a symbolic link" : "not a directory of this user"));
        return;
      }
      LOG.info(() -> "removing shared-memory directory " + base.resolve(name));
      try (SecureDirectoryStream<Path> dir =
          secure.newDirectoryStream(name, LinkOption.NOFOLLOW_LINKS)) {
        for (Path entry : dir) {
          Path file = entry.getFileName();
          PosixFileAttributes f = attributes(dir, file);
          if (f != null
              && f.isRegularFile()
              && owned(f.owner())
              && OURS.matcher(file.toString()).matches()) {
            dir.deleteFile(file);
          } else if (f != null) {
            LOG.warning("leaving " + base.resolve(name).resolve(file) + ": not a file it made");
          }
        }
      }
      secure.deleteDirectory(name);
    } catch (IOException | RuntimeException e) {
      LOG.warning("cannot remove " + base.resolve(name) + ": " + e);
    }
  }

  private static PosixFileAttributes attributes(SecureDirectoryStream<Path> dir, Path name)
      throws IOException {
    try {
      return dir.getFileAttributeView(name, PosixFileAttributeView.class, LinkOption.NOFOLLOW_LINKS)
          .readAttributes();
    } catch (java.nio.file.NoSuchFileException e) {
      return null;
    }
  }

  /** lstat, or null where the file system has no POSIX attributes. */
  private static PosixFileAttributes attributes(Path p) throws IOException {
    PosixFileAttributeView v =
        Files.getFileAttributeView(p, PosixFileAttributeView.class, LinkOption.NOFOLLOW_LINKS);
    return v == null ? null : v.readAttributes();
  }

  private static boolean owned(UserPrincipal owner) {
    UserPrincipal me = Self.USER;
    return me == null || me.equals(owner);
  }

  /** This process's user, or null when it cannot be told (then ownership is not checked). */
  private static final class Self {
    static final UserPrincipal USER = find();

    private static UserPrincipal find() {
      try {
        // /proc/<pid> belongs to the process's effective user; works without a passwd entry.
        Path proc = Path.of("/proc", Long.toString(ProcessHandle.current().pid()));
        if (Files.isDirectory(proc)) {
          return Files.getOwner(proc);
        }
        return java.nio.file.FileSystems.getDefault()
            .getUserPrincipalLookupService()
            .lookupPrincipalByName(System.getProperty("user.name"));
      } catch (IOException | RuntimeException e) {
        return null;
      }
    }
  }
}
