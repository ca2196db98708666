package dev.roadless.checkpoint.golden;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.function.ThrowingConsumer;

/**
 * A golden folder read by the rules every golden suite of the project follows (the same as
 * optimizer-service's {@code GoldenFolder} and trainer-service's {@code GoldenFiles}; the modules
 * share no test code):
 *
 * <ul>
 *   <li>a case is a {@code *.json} object with a textual {@code kind} and a numeric {@code
 *       format_version}; other files (README.md, FORMAT.md, JSON without those fields) and cases of
 *       kinds the suite does not run are ignored, and listed;
 *   <li>an unparsable {@code *.json}, or a case of the suite's kind at a {@code format_version}
 *       other than 1, fails;
 *   <li>a folder with no case at all fails (a mistyped path must not pass); a folder with cases but
 *       none of the suite's kind skips the suite, saying so.
 * </ul>
 */
final class GoldenFolder {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** The repository's copy of the visible cases, seen from a module folder. */
  static final Path REPOSITORY_COPY = Path.of("../testdata/golden");

  private GoldenFolder() {}

  /** {@code roadless.golden.dir} (Surefire sets it), else the repository's {@code testdata}. */
  static Path dir() {
    String prop = System.getProperty("roadless.golden.dir");
    return prop != null && !prop.isBlank() ? Path.of(prop) : REPOSITORY_COPY;
  }

  /**
   * One dynamic test per case of {@code kind}, named by its {@code case}; when the folder holds
   * cases but none of this kind, one test, reported as skipped, says so.
   */
  static Stream<DynamicTest> tests(Path dir, String kind, ThrowingConsumer<JsonNode> check) {
    List<JsonNode> cases = ofKind(dir, kind);
    if (cases.isEmpty()) {
      String why = "no golden case of kind " + kind + " in " + dir;
      return Stream.of(DynamicTest.dynamicTest(why, () -> Assumptions.abort(why)));
    }
    return cases.stream()
        .map(c -> DynamicTest.dynamicTest(c.get("case").asText(), () -> check.accept(c)));
  }

  /** The cases of {@code kind} in file-name order; see the class comment for everything else. */
  static List<JsonNode> ofKind(Path dir, String kind) {
    if (!Files.isDirectory(dir)) {
      throw new IllegalStateException("golden folder not found: " + dir.toAbsolutePath());
    }
    List<Path> files;
    try (Stream<Path> s = Files.list(dir)) {
      files = s.filter(Files::isRegularFile).sorted().toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    List<JsonNode> out = new ArrayList<>();
    List<String> ignored = new ArrayList<>();
    int cases = 0;
    for (Path f : files) {
      String name = f.getFileName().toString();
      JsonNode n = name.endsWith(".json") ? read(f) : null;
      if (n == null || !n.path("kind").isTextual() || !n.path("format_version").isNumber()) {
        ignored.add(name);
        continue;
      }
      cases++;
      if (!n.get("kind").asText().equals(kind)) {
        ignored.add(name + " (" + n.get("kind").asText() + ")");
      } else if (n.get("format_version").asInt() != 1) {
        throw new IllegalStateException(f + ": unsupported format_version");
      } else {
        out.add(n);
      }
    }
    if (cases == 0) {
      throw new IllegalStateException("no golden case at all in " + dir.toAbsolutePath());
    }
    System.out.printf(
        "golden %s: %d %s case(s); ignored %s%n",
        dir, out.size(), kind, String.join(", ", ignored));
    return out;
  }

  private static JsonNode read(Path f) {
    try {
      return JSON.readTree(f.toFile());
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(f + ": a .json file that is not JSON", e);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
