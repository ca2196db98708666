package dev.roadless.trainer.golden;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Compares arrays against golden references and prints one summary line per case.
 *
 * <p>Relative error is FORMAT.md's: {@code max|a-b| / max(max|ref|, 1)} per array. Every comparison
 * is recorded, the worst are printed, and {@link #assertOk()} fails listing every array over its
 * tolerance.
 */
public final class ErrorReport {
  private final String caseName;
  private final List<String> failures = new ArrayList<>();
  private double worstAbs;
  private double worstRel;
  private String worstName = "-";
  private int compared;

  public ErrorReport(String caseName) {
    this.caseName = caseName;
  }

  /** Checks {@code max|a-b| / max(max|ref|,1) <= relTol}. */
  public void relative(String name, float[] actual, float[] ref, double relTol) {
    double scale = Math.max(maxAbs(ref), 1.0);
    check(name, actual, ref, relTol * scale, scale);
  }

  /** Checks {@code max|a-b| <= absTol}; reported relative to {@code scale}. */
  public void absolute(String name, float[] actual, float[] ref, double absTol, double scale) {
    check(name, actual, ref, absTol, scale);
  }

  /** Checks {@code |a-b| <= relTol * max(|ref|, 1)}. */
  public void scalar(String name, double actual, double ref, double relTol) {
    double scale = Math.max(Math.abs(ref), 1.0);
    record(name, Math.abs(actual - ref), scale, relTol * scale);
  }

  public void exact(String name, long actual, long ref) {
    record(name, Math.abs(actual - ref), 1, 0);
  }

  private void check(String name, float[] actual, float[] ref, double absTol, double scale) {
    if (actual.length != ref.length) {
      compared++;
      failures.add(name + ": length " + actual.length + " vs " + ref.length);
      return;
    }
    double abs = 0;
    for (int i = 0; i < ref.length; i++) {
      double d = Math.abs((double) actual[i] - (double) ref[i]);
      abs = Double.isNaN(d) ? Double.POSITIVE_INFINITY : Math.max(abs, d);
    }
    record(name, abs, scale, absTol);
  }

  private void record(String name, double abs, double scale, double absTol) {
    compared++;
    double rel = abs / scale;
    if (rel >= worstRel) {
      worstRel = rel;
      worstName = name;
    }
    worstAbs = Math.max(worstAbs, abs);
    if (!(abs <= absTol)) {
      failures.add(
          String.format(Locale.ROOT, "%s: max abs %.3e > tolerance %.3e", name, abs, absTol));
    }
  }

  public static double maxAbs(float[] a) {
    double m = 0;
    for (float v : a) {
      m = Math.max(m, Math.abs(v));
    }
    return m;
  }

  /** Prints the case line and fails on any mismatch. */
  public void assertOk() {
    System.out.printf(
        Locale.ROOT,
        "golden %-24s %3d arrays  max abs %.3e  max rel %.3e (%s)  %s%n",
        caseName,
        compared,
        worstAbs,
        worstRel,
        worstName,
        failures.isEmpty() ? "OK" : "FAILED");
    if (!failures.isEmpty()) {
      fail(caseName + ": " + String.join("; ", failures));
    }
  }
}
