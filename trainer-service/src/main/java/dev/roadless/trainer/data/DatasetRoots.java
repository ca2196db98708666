package dev.roadless.trainer.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The directories a trainer may read dataset files from (its {@code dataset-roots} setting). A path
 * is allowed when its real path (every symbolic link resolved) is a readable regular file inside
 * one of the roots' real paths; anything else is simply not allowed, without saying why, so that a
 * caller learns nothing about files it may not read. The bundled digits ({@link Mnist}) are on the
 * classpath and need no root. Immutable.
 */
public final class DatasetRoots {
  private static final DatasetRoots NONE = new DatasetRoots(List.of());

  private final List<Path> roots;

  private DatasetRoots(List<Path> roots) {
    this.roots = List.copyOf(roots);
  }

  /** No root: only the bundled digits. */
  public static DatasetRoots none() {
    return NONE;
  }

  /**
   * Roots from a comma-separated list of directories (blank: none).
   *
   * @throws IllegalArgumentException if an entry is not an existing directory
   */
  public static DatasetRoots parse(String commaSeparated) {
    List<Path> out = new ArrayList<>();
    for (String entry : commaSeparated.split(",")) {
      if (entry.isBlank()) {
        continue;
      }
      try {
        Path real = Path.of(entry.trim()).toRealPath();
        if (!Files.isDirectory(real)) {
          throw new IllegalArgumentException(
              "dataset-roots: '" + entry.trim() + "' is no directory");
        }
        out.add(real);
      } catch (IOException | InvalidPathException e) {
        throw new IllegalArgumentException(
            "dataset-roots: '" + entry.trim() + "' is no existing directory", e);
      }
    }
    return out.isEmpty() ? NONE : new DatasetRoots(out);
  }

  /** The roots' real paths, in the configured order. */
  public List<Path> roots() {
    return roots;
  }

  /**
   * The real path of {@code path} when it is a readable regular file under a root; otherwise empty,
   * whatever the cause (outside every root, missing, a directory or device, unreadable, malformed).
   */
  public Optional<Path> resolve(String path) {
    if (path == null || path.isBlank() || roots.isEmpty()) {
      return Optional.empty();
    }
    Path real;
    try {
      real = Path.of(path).toAbsolutePath().toRealPath();
    } catch (IOException | InvalidPathException | SecurityException e) {
      return Optional.empty();
    }
    if (roots.stream().noneMatch(root -> real.startsWith(root) && !real.equals(root))) {
      return Optional.empty();
    }
    try {
      BasicFileAttributes a =
          Files.readAttributes(real, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
      return a.isRegularFile() && Files.isReadable(real) ? Optional.of(real) : Optional.empty();
    } catch (IOException | SecurityException e) {
      return Optional.empty();
    }
  }

  @Override
  public String toString() {
    return roots.toString();
  }
}
