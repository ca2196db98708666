package dev.roadless.deploy.demo;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/** A self-contained HTML page with inline SVG line charts; no scripts, no network. */
final class Plot {
  /** One series of (step, value) points. */
  record Series(String label, String color, List<double[]> points) {}

  private Plot() {}

  static void write(Path file, String title, List<String> notes, List<Chart> charts)
      throws IOException {
    StringBuilder html = new StringBuilder();
    html.append("<!doctype html><html><head><meta charset=\"utf-8\"><title>")
        .append(title)
        .append("</title><style>body{font-family:sans-serif;margin:24px;color:#222}")
        .append("svg{background:#fff;border:1px solid #ddd;margin:8px 0}")
        .append(".n{font-size:13px;color:#444}</style></head><body><h2>")
        .append(title)
        .append("</h2>");
    for (String note : notes) {
      html.append("<p class=\"n\">").append(escape(note)).append("</p>");
    }
    for (Chart chart : charts) {
      html.append(chart.svg());
    }
    html.append("</body></html>\n");
    Files.writeString(file, html, StandardCharsets.UTF_8);
  }

  /**
   * One chart: a title, the axes' labels with their units ("training step", "accuracy (%)") and its
   * series, drawn with grid lines and a legend of line samples.
   */
  record Chart(String title, String xLabel, String yLabel, List<Series> series) {
    String svg() {
      int w = 760;
      int h = 300;
      int left = 60;
      int right = 190;
      int top = 30;
      int bottom = 40;
      double minX = Double.MAX_VALUE;
      double maxX = -Double.MAX_VALUE;
      double minY = Double.MAX_VALUE;
      double maxY = -Double.MAX_VALUE;
      for (Series s : series) {
        for (double[] p : s.points()) {
          minX = Math.min(minX, p[0]);
          maxX = Math.max(maxX, p[0]);
          minY = Math.min(minY, p[1]);
          maxY = Math.max(maxY, p[1]);
        }
      }
      if (minX > maxX) {
        minX = 0;
        maxX = 1;
        minY = 0;
        maxY = 1;
      }
      if (maxX == minX) {
        maxX = minX + 1;
      }
      if (minY > 0 && minY < (maxY - minY) / 2) {
        minY = 0; // a loss axis starts at zero rather than at its smallest sample
      }
      if (maxY == minY) {
        maxY = minY + 1;
      }
      double x0 = minX;
      double x1 = maxX;
      double y0 = minY;
      double y1 = maxY;
      int pw = w - left - right;
      int ph = h - top - bottom;
      StringBuilder svg =
          new StringBuilder(
              String.format(
                  Locale.ROOT,
                  "<svg width=\"%d\" height=\"%d\" xmlns=\"http://www.w3.org/2000/svg\">",
                  w,
                  h));
      svg.append(
          String.format(
              Locale.ROOT,
              "<text x=\"%d\" y=\"18\" font-size=\"14\">%s</text>",
              left,
              escape(title)));
      svg.append(
          String.format(
              Locale.ROOT,
              "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>",
              left,
              top,
              pw,
              ph));
      for (int i = 0; i <= 4; i++) {
        double v = y0 + (y1 - y0) * i / 4;
        int y = top + ph - (int) (ph * i / 4.0);
        svg.append(
            String.format(
                Locale.ROOT,
                "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#eee\"/>",
                left,
                y,
                left + pw,
                y));
        svg.append(
            String.format(
                Locale.ROOT,
                "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">%.3g</text>",
                left - 4,
                y + 4,
                v));
        double s = x0 + (x1 - x0) * i / 4;
        int x = left + (int) (pw * i / 4.0);
        svg.append(
            String.format(
                Locale.ROOT,
                "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%.0f</text>",
                x,
                top + ph + 16,
                s));
      }
      svg.append(
          String.format(
              Locale.ROOT,
              "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">%s</text>",
              left + pw / 2,
              h - 6,
              escape(xLabel)));
      svg.append(
          String.format(
              Locale.ROOT,
              "<text x=\"12\" y=\"%d\" font-size=\"12\" transform=\"rotate(-90 12 %d)\">%s</text>",
              top + ph / 2,
              top + ph / 2,
              escape(yLabel)));
      int legend = 0;
      for (Series s : series) {
        StringBuilder path = new StringBuilder();
        for (double[] p : s.points()) {
          double x = left + pw * (p[0] - x0) / (x1 - x0);
          double y = top + ph - ph * (p[1] - y0) / (y1 - y0);
          path.append(path.length() == 0 ? "M" : " L")
              .append(String.format(Locale.ROOT, "%.1f %.1f", x, y));
        }
        svg.append(
            String.format(
                "<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"/>",
                path, s.color()));
        int ly = top + 14 + 18 * legend++;
        svg.append(
            String.format(
                Locale.ROOT,
                "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>",
                left + pw + 10,
                ly - 4,
                left + pw + 32,
                ly - 4,
                s.color()));
        svg.append(
            String.format(
                Locale.ROOT,
                "<text x=\"%d\" y=\"%d\" font-size=\"12\">%s</text>",
                left + pw + 38,
                ly,
                escape(s.label())));
      }
      return svg.append("</svg>").toString();
    }
  }

  static String escape(String s) {
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
  }
}
