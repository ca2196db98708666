package dev.roadless.loadtest;

import java.util.List;
import java.util.Locale;

/** A line plot as inline SVG: axes with ticks and units, one polyline per series, a legend. */
final class SvgPlot {
  /** One line: its legend text, colour and points. */
  record Series(String name, String color, double[] x, double[] y) {}

  private static final int W = 860;
  private static final int H = 300;
  private static final int LEFT = 70;
  private static final int RIGHT = 170;
  private static final int TOP = 30;
  private static final int BOTTOM = 45;

  private SvgPlot() {}

  static String render(String title, String xLabel, String yLabel, List<Series> series) {
    double xMax = 1;
    double yMax = 0;
    for (Series s : series) {
      for (int i = 0; i < s.x().length; i++) {
        xMax = Math.max(xMax, s.x()[i]);
        if (Double.isFinite(s.y()[i])) {
          yMax = Math.max(yMax, s.y()[i]);
        }
      }
    }
    double yStep = niceStep(yMax > 0 ? yMax : 1);
    yMax = Math.ceil((yMax > 0 ? yMax : 1) / yStep) * yStep;
    double xStep = niceStep(xMax);
    double pw = W - LEFT - RIGHT;
    double ph = H - TOP - BOTTOM;
    StringBuilder svg = new StringBuilder();
    svg.append(
        String.format(
            Locale.ROOT,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">%n",
            W,
            H));
    svg.append(text(LEFT, 18, title, "start", "bold"));
    for (double v = 0; v <= yMax + yStep / 2; v += yStep) {
      double y = TOP + ph - v / yMax * ph;
      svg.append(line(LEFT, y, LEFT + pw, y, "#ddd"));
      svg.append(text(LEFT - 6, y + 4, fmt(v), "end", "normal"));
    }
    for (double v = 0; v <= xMax + xStep / 2; v += xStep) {
      double x = LEFT + v / xMax * pw;
      svg.append(line(x, TOP + ph, x, TOP + ph + 5, "#000"));
      svg.append(text(x, TOP + ph + 18, fmt(v), "middle", "normal"));
    }
    svg.append(line(LEFT, TOP, LEFT, TOP + ph, "#000"));
    svg.append(line(LEFT, TOP + ph, LEFT + pw, TOP + ph, "#000"));
    svg.append(text(LEFT + pw / 2, H - 6, xLabel, "middle", "normal"));
    svg.append(
        String.format(
            Locale.ROOT,
            "<text x=\"14\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 14 %.1f)\">%s</text>%n",
            TOP + ph / 2,
            TOP + ph / 2,
            Html.escape(yLabel)));
    int row = 0;
    for (Series s : series) {
      StringBuilder pts = new StringBuilder();
      for (int i = 0; i < s.x().length; i++) {
        if (Double.isFinite(s.y()[i])) {
          pts.append(
              String.format(
                  Locale.ROOT,
                  "%.1f,%.1f ",
                  LEFT + s.x()[i] / xMax * pw,
                  TOP + ph - s.y()[i] / yMax * ph));
        }
      }
      svg.append(
          String.format(
              "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"%s\"/>%n",
              s.color(), pts.toString().trim()));
      double ly = TOP + 10 + 18 * row++;
      svg.append(line(W - RIGHT + 15, ly, W - RIGHT + 40, ly, s.color()));
      svg.append(text(W - RIGHT + 46, ly + 4, s.name(), "start", "normal"));
    }
    return svg.append("</svg>\n").toString();
  }

  /** 1, 2 or 5 times a power of ten, giving about five ticks up to {@code max}. */
  static double niceStep(double max) {
    double raw = max / 5;
    double p = Math.pow(10, Math.floor(Math.log10(raw)));
    double f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
  }

  private static String fmt(double v) {
    return v == Math.rint(v) ? Long.toString((long) v) : String.format(Locale.ROOT, "%.3g", v);
  }

  private static String line(double x1, double y1, double x2, double y2, String color) {
    return String.format(
        Locale.ROOT,
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>%n",
        x1,
        y1,
        x2,
        y2,
        color);
  }

  private static String text(double x, double y, String s, String anchor, String weight) {
    return String.format(
        Locale.ROOT,
        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-weight=\"%s\">%s</text>%n",
        x,
        y,
        anchor,
        weight,
        Html.escape(s));
  }
}
