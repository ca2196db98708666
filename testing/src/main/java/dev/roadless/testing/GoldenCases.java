package dev.roadless.testing;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.function.ThrowingConsumer;

/**
 * The golden cases, read by the same rules in every module's suites: the folder named by the system
 * property {@code roadless.golden.dir} (Surefire sets it from the parent POM: the repository's
 * {@code testdata/golden} unless overridden).
 *
 * <p>Any valid case set may be pointed at, so the folder is read by these rules:
 *
 * <ul>
 *   <li>A case is a {@code *.json} file holding an object with a textual {@code kind} and a numeric
 *       {@code format_version} (FORMAT.md section 1). Anything else (README.md, FORMAT.md, other
 *       files, JSON without those fields) is not a case and is ignored.
 *   <li>A case of a kind the asking suite does not run is ignored by that suite.
 *   <li>A {@code *.json} file that does not parse, or a case of the suite's kinds with a {@code
 *       format_version} other than 1, fails: that is a broken case, not a note.
 *   <li>A folder that holds no case at all fails every suite (a mistyped path must not pass). A
 *       folder with cases but none of a suite's kinds (an override holding only some kinds) skips
 *       that suite, saying so.
 * </ul>
 */
public final class GoldenCases {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** The repository's copy of the visible cases, seen from a module folder. */
  public static final Path REPOSITORY_COPY = Path.of("../testdata/golden");

  /** What a folder holds: its cases, and the files that are not cases. */
  public record Scan(Path dir, List<JsonNode> cases, List<String> ignored) {
    /** The cases of the given kinds in file-name order, each checked for {@code format_version}. */
    public List<JsonNode> ofKind(Set<String> kinds) {
      List<JsonNode> out = new ArrayList<>();
      for (JsonNode c : cases) {
        if (kinds.contains(c.get("kind").asText())) {
          if (c.get("format_version").asInt() != 1) {
            throw new IllegalStateException(
                c.path("case").asText("?") + " in " + dir + ": unsupported format_version");
          }
          out.add(c);
        }
      }
      return out;
    }
  }

  private GoldenCases() {}

  public static Path dir() {
    String prop = System.getProperty("roadless.golden.dir");
    // Without Surefire (an IDE run from the module folder): the repository's own copy.
    Path p = prop != null && !prop.isBlank() ? Path.of(prop) : REPOSITORY_COPY;
    if (!Files.isDirectory(p)) {
      throw new IllegalStateException("golden folder not found: " + p.toAbsolutePath());
    }
    return p;
  }

  /** Reads every file of the folder by the rules above; fails if it holds no case at all. */
  public static Scan scan(Path dir) {
    List<JsonNode> cases = new ArrayList<>();
    List<String> ignored = new ArrayList<>();
    List<Path> files;
    try (Stream<Path> s = Files.list(dir)) {
      files = s.filter(Files::isRegularFile).sorted().toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    for (Path f : files) {
      String name = f.getFileName().toString();
      if (!name.endsWith(".json")) {
        ignored.add(name);
        continue;
      }
      JsonNode n = read(f);
      if (n.isObject() && n.path("kind").isTextual() && n.path("format_version").isNumber()) {
        cases.add(n);
      } else {
        ignored.add(name + " (no kind/format_version)");
      }
    }
    if (cases.isEmpty()) {
      throw new IllegalStateException("no golden case at all in " + dir.toAbsolutePath());
    }
    return new Scan(dir, cases, ignored);
  }

  /**
   * One dynamic test per case of the given kinds in {@link #dir()}, named by its {@code case}; when
   * the folder holds cases but none of these kinds, one test, reported as skipped, says so.
   */
  public static Stream<DynamicTest> tests(ThrowingConsumer<JsonNode> check, String... kinds) {
    return tests(dir(), check, kinds);
  }

  /** {@link #tests(ThrowingConsumer, String...)} on a given folder. */
  public static Stream<DynamicTest> tests(
      Path dir, ThrowingConsumer<JsonNode> check, String... kinds) {
    List<JsonNode> cases = ofKind(dir, kinds);
    if (cases.isEmpty()) {
      String why = "no golden case of kind " + List.of(kinds) + " in " + dir;
      return Stream.of(DynamicTest.dynamicTest(why, () -> Assumptions.abort(why)));
    }
    return cases.stream()
        .map(c -> DynamicTest.dynamicTest(c.get("case").asText(), () -> check.accept(c)));
  }

  /** The cases of the given kinds in a folder, sorted by file name, the folder's files listed. */
  public static List<JsonNode> ofKind(Path dir, String... kinds) {
    Scan scan = scan(dir);
    List<JsonNode> out = scan.ofKind(Set.of(kinds));
    List<String> otherKinds =
        scan.cases().stream()
            .filter(c -> !Set.of(kinds).contains(c.get("kind").asText()))
            .map(c -> c.get("kind").asText())
            .distinct()
            .toList();
    System.out.printf(
        "golden %s: %d case(s) of %s; other kinds %s; not cases %s%n",
        scan.dir(), out.size(), List.of(kinds), otherKinds, scan.ignored());
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
