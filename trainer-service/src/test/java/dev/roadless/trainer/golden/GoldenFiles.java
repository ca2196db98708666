package dev.roadless.trainer.golden;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * The golden vectors: every {@code *.json} under the directory named by the system property {@code
 * roadless.golden.dir} (set by Surefire), falling back to {@code ../shared/golden}.
 */
public final class GoldenFiles {
  private static final ObjectMapper JSON = new ObjectMapper();

  private GoldenFiles() {}

  public static Path dir() {
    String prop = System.getProperty("roadless.golden.dir");
    Path p = prop != null && !prop.isBlank() ? Path.of(prop) : Path.of("../shared/golden");
    if (!Files.isDirectory(p)) {
      p = Path.of("../../shared/golden"); // running from trainer-service/ without Surefire
    }
    if (!Files.isDirectory(p)) {
      throw new IllegalStateException("golden directory not found: " + prop);
    }
    return p;
  }

  /** Every case whose {@code kind} equals the given one, sorted by file name; never empty. */
  public static List<JsonNode> ofKind(String kind) {
    List<JsonNode> out = new ArrayList<>();
    try (Stream<Path> files = Files.list(dir())) {
      for (Path f : files.filter(f -> f.toString().endsWith(".json")).sorted().toList()) {
        JsonNode n = JSON.readTree(f.toFile());
        if (kind.equals(n.path("kind").asText())) {
          if (n.path("format_version").asInt() != 1) {
            throw new IllegalStateException(f + ": unsupported format_version");
          }
          out.add(n);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    if (out.isEmpty()) {
      throw new IllegalStateException("no golden case of kind " + kind + " in " + dir());
    }
    return out;
  }
}
