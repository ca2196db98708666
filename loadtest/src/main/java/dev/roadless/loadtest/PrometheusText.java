package dev.roadless.loadtest;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A scrape of a Prometheus text-format endpoint (version 0.0.4): each sample's name, labels and
 * value. Comments, timestamps and exemplars are skipped; enough for counters and gauges.
 */
public final class PrometheusText {
  /** One sample line. */
  public record Sample(String name, Map<String, String> labels, double value) {}

  private final List<Sample> samples;

  private PrometheusText(List<Sample> samples) {
    this.samples = samples;
  }

  /** GETs {@code url} and parses it. */
  public static PrometheusText scrape(String url) throws IOException, InterruptedException {
    HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    HttpResponse<String> r =
        http.send(
            HttpRequest.newBuilder(URI.create(url))
                .timeout(Duration.ofSeconds(10))
                .header("Accept", "text/plain; version=0.0.4")
                .build(),
            HttpResponse.BodyHandlers.ofString());
    if (r.statusCode() != 200) {
      throw new IOException(url + " answered HTTP " + r.statusCode());
    }
    return parse(r.body());
  }

  public static PrometheusText parse(String text) {
    List<Sample> samples = new ArrayList<>();
    for (String line : text.split("\n")) {
      line = line.strip();
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      int brace = line.indexOf('{');
      int space = line.indexOf(' ');
      String name;
      Map<String, String> labels = new LinkedHashMap<>();
      String rest;
      if (brace >= 0 && (space < 0 || brace < space)) {
        name = line.substring(0, brace);
        int end = parseLabels(line, brace + 1, labels);
        rest = line.substring(end + 1).strip();
      } else {
        name = line.substring(0, space);
        rest = line.substring(space + 1).strip();
      }
      String value = rest.split("\\s+")[0];
      samples.add(new Sample(name, Map.copyOf(labels), parseValue(value)));
    }
    return new PrometheusText(List.copyOf(samples));
  }

  /** The sum of every sample called {@code name} whose labels include {@code match}. */
  public double sum(String name, Map<String, String> match) {
    double total = 0;
    for (Sample s : samples) {
      if (s.name().equals(name) && s.labels().entrySet().containsAll(match.entrySet())) {
        total += s.value();
      }
    }
    return total;
  }

  /** Sums of {@code name} by the value of one label. */
  public Map<String, Double> byLabel(String name, String label) {
    Map<String, Double> out = new LinkedHashMap<>();
    for (Sample s : samples) {
      if (s.name().equals(name) && s.labels().containsKey(label)) {
        out.merge(s.labels().get(label), s.value(), Double::sum);
      }
    }
    return out;
  }

  public boolean has(String name) {
    return samples.stream().anyMatch(s -> s.name().equals(name));
  }

  /** Reads {@code key="value",...} from {@code i}; returns the index of the closing brace. */
  private static int parseLabels(String line, int i, Map<String, String> labels) {
    while (i < line.length() && line.charAt(i) != '}') {
      int eq = line.indexOf('=', i);
      String key = line.substring(i, eq).strip();
      StringBuilder value = new StringBuilder();
      int j = line.indexOf('"', eq) + 1;
      for (; line.charAt(j) != '"'; j++) {
        char c = line.charAt(j);
        if (c == '\\') {
          char n = line.charAt(++j);
          value.append(n == 'n' ? '\n' : n);
        } else {
          value.append(c);
        }
      }
      labels.put(key, value.toString());
      i = j + 1;
      while (i < line.length() && (line.charAt(i) == ',' || line.charAt(i) == ' ')) {
        i++;
      }
    }
    return i;
  }

  private static double parseValue(String v) {
    return switch (v) {
      case "+Inf" -> Double.POSITIVE_INFINITY;
      case "-Inf" -> Double.NEGATIVE_INFINITY;
      case "NaN" -> Double.NaN;
      default -> Double.parseDouble(v);
    };
  }
}
