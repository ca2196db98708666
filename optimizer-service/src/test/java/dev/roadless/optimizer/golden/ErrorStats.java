package dev.roadless.optimizer.golden;

import java.util.ArrayList;
import java.util.List;

/**
 * Element-wise comparison against reference float32 values at the stated tolerance {@code |a-b| <=
 * atol + rtol*|ref|}, collecting the figures a case line reports.
 *
 * <p>rtol 1e-5 and atol 1e-6 are the project's stated tolerance (ALGORITHM.md section 3.2, the
 * authors' own test tolerance); they are never tighter than FORMAT.md section 6's suggested {@code
 * 1e-6 * max(1, |ref|)} for runs of up to a few dozen steps. For longer runs FORMAT.md allows about
 * {@code 2e-6}, because the free-running error grows slowly with the run length, so a case of more
 * than {@link #SHORT_RUN_STEPS} steps gets atol 2e-6: the tolerance follows the case, not the
 * visible files' 25 to 50 steps.
 */
final class ErrorStats {
  static final double RTOL = 1e-5;
  static final double ATOL = 1e-6;
  static final double ATOL_LONG_RUN = 2e-6;
  static final int SHORT_RUN_STEPS = 50;

  private final double atol;

  private double maxAbs;
  private double maxRel;
  private long elements;
  private long bitExact;
  private final List<String> failures = new ArrayList<>();

  /** For a case of {@code steps} steps. */
  ErrorStats(int steps) {
    this.atol = steps > SHORT_RUN_STEPS ? ATOL_LONG_RUN : ATOL;
  }

  /** Compares one array; {@code where} names it in failure messages. */
  void compare(String where, float[] ours, float[] ref) {
    if (ours.length != ref.length) {
      failures.add(where + ": length " + ours.length + " vs reference " + ref.length);
      return;
    }
    double arrayMax = 0;
    double refMax = 1;
    for (int i = 0; i < ref.length; i++) {
      double diff = Math.abs((double) ours[i] - ref[i]);
      arrayMax = Math.max(arrayMax, diff);
      refMax = Math.max(refMax, Math.abs(ref[i]));
      elements++;
      if (Float.floatToRawIntBits(ours[i]) == Float.floatToRawIntBits(ref[i])) {
        bitExact++;
      }
      if (!(diff <= atol + RTOL * Math.abs(ref[i]))) {
        fail(
            where
                + "["
                + i
                + "]: ours "
                + ours[i]
                + " vs reference "
                + ref[i]
                + ", |diff| "
                + diff);
      }
    }
    maxAbs = Math.max(maxAbs, arrayMax);
    // golden/FORMAT.md section 6: max|a-b| / max(max|ref|, 1) per array.
    maxRel = Math.max(maxRel, arrayMax / refMax);
  }

  /**
   * Compares a double scalar to 1e-12 relative: FORMAT.md section 6 found the float64 scalars bit
   * for bit and allows about 1e-15 relative for libm's {@code pow}; 1e-12 is looser than that.
   */
  void scalar(String where, double ours, double ref) {
    double diff = Math.abs(ours - ref);
    if (!(diff <= 1e-12 * Math.max(Math.abs(ours), Math.abs(ref)))) {
      fail(where + ": ours " + ours + " vs reference " + ref);
    }
  }

  void fail(String message) {
    failures.add(message);
  }

  List<String> failures() {
    return failures;
  }

  double maxAbs() {
    return maxAbs;
  }

  double maxRel() {
    return maxRel;
  }

  double bitExactFraction() {
    return elements == 0 ? 1.0 : (double) bitExact / elements;
  }

  long elements() {
    return elements;
  }
}
