package dev.roadless.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * A house rule kept in the build: no hand-written main source file of any module is over {@value
 * #MAX_LINES} lines. A file that wants to grow past it wants splitting along the jobs it does.
 */
class SourceSizeTest {
  private static final int MAX_LINES = 400;

  @Test
  void mainSources_everyModule_noFileOver400Lines() throws IOException {
    Path root = Path.of("").toAbsolutePath().getParent();
    List<Path> sources;
    try (Stream<Path> files = Files.walk(root)) {
      sources =
          files
              .filter(p -> p.toString().endsWith(".java"))
              .filter(p -> root.relativize(p).toString().contains("/src/main/java/"))
              .filter(p -> !root.relativize(p).toString().contains("/target/"))
              .toList();
    }
    assertTrue(
        sources.size() > 100, "found only " + sources.size() + " main sources under " + root);
    List<String> tooLong =
        sources.stream()
            .filter(p -> lines(p) > MAX_LINES)
            .map(p -> root.relativize(p) + " (" + lines(p) + " lines)")
            .toList();
    assertEquals(List.of(), tooLong, "main source files over " + MAX_LINES + " lines");
  }

  private static long lines(Path file) {
    try (Stream<String> lines = Files.lines(file)) {
      return lines.count();
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}
