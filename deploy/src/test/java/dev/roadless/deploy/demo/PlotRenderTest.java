package dev.roadless.deploy.demo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.awt.image.BufferedImage;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The demo's plot rendered by a real browser (headless Chromium): a screenshot must show every
 * series' line and legend sample in its colour, and the page must carry axis labels with units.
 * Without Chromium the test is skipped on a workstation but fails in CI ({@code CI=true}), where
 * {@code .ci/run} installs it.
 */
class PlotRenderTest {
  private static final String BLUE = "#1f77b4";
  private static final String ORANGE = "#ff7f0e";

  @Test
  void write_renderedByChromium_showsEverySeriesAndTheLabels(@TempDir Path tmp) throws Exception {
    Optional<Path> chromium = chromium();
    String why = "no chromium on PATH (apt-get install -y chromium)";
    assumeTrue(chromium.isPresent() || "true".equals(System.getenv("CI")), why);
    assertTrue(chromium.isPresent(), why + "; in CI .ci/run installs it");
    List<double[]> rising = new ArrayList<>();
    List<double[]> falling = new ArrayList<>();
    for (int step = 0; step <= 100; step += 10) {
      rising.add(new double[] {step, 80 + step * 0.18});
      falling.add(new double[] {step, 95 - step * 0.1});
    }
    Path html = tmp.resolve("plot.html");
    Plot.write(
        html,
        "Render check",
        List.of("a note with <markup> & an ampersand"),
        List.of(
            new Plot.Chart(
                "Accuracy",
                "training step",
                "accuracy (%)",
                List.of(
                    new Plot.Series("rising", BLUE, rising),
                    new Plot.Series("falling", ORANGE, falling)))));
    String page = Files.readString(html);
    for (String label : List.of("training step", "accuracy (%)", "rising", "falling")) {
      assertTrue(page.contains(">" + label + "<"), label);
    }
    assertTrue(page.contains("&lt;markup&gt; &amp; an"));

    Path png = tmp.resolve("plot.png");
    Process p =
        new ProcessBuilder(
                chromium.get().toString(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=900,500",
                "--screenshot=" + png,
                html.toUri().toString())
            .redirectErrorStream(true)
            .redirectOutput(tmp.resolve("chromium.log").toFile())
            .start();
    assertTrue(p.waitFor(2, TimeUnit.MINUTES), "chromium did not finish");
    assertEquals(0, p.exitValue(), Files.readString(tmp.resolve("chromium.log")));
    BufferedImage image = ImageIO.read(png.toFile());
    assertEquals(900, image.getWidth());
    // Each series: its line plus its legend sample, many pixels of exactly its colour.
    assertTrue(pixels(image, BLUE) > 200, "blue pixels: " + pixels(image, BLUE));
    assertTrue(pixels(image, ORANGE) > 200, "orange pixels: " + pixels(image, ORANGE));
  }

  private static int pixels(BufferedImage image, String color) {
    int rgb = Integer.parseInt(color.substring(1), 16);
    int count = 0;
    for (int y = 0; y < image.getHeight(); y++) {
      for (int x = 0; x < image.getWidth(); x++) {
        if ((image.getRGB(x, y) & 0xffffff) == rgb) {
          count++;
        }
      }
    }
    return count;
  }

  static Optional<Path> chromium() {
    String path = System.getenv().getOrDefault("PATH", "");
    return Stream.of("chromium", "chromium-browser", "google-chrome")
        .flatMap(name -> Stream.of(path.split(File.pathSeparator)).map(d -> Path.of(d, name)))
        .filter(Files::isExecutable)
        .findFirst();
  }
}
