package dev.roadless.trainer.golden;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.opentest4j.AssertionFailedError;

/** The stated tolerance, at its edges: rtol 1e-5, atol 1e-6 (ALGORITHM.md section 3.2). */
class ErrorReportTest {
  private static Map<String, float[]> grads(float[] weight, float[] biasBeforeBn) {
    Map<String, float[]> m = new LinkedHashMap<>();
    m.put("fc1.weight", weight);
    m.put("fc1.bias", biasBeforeBn);
    return m;
  }

  @Test
  void gradients_smallGradientsOffByNineTenthsOfAtol_pass() {
    // Largest gradient 0.05: the old 5e-6 * largest (2.5e-7) rejected this; atol 1e-6 allows it.
    ErrorReport r = new ErrorReport("ErrorReportTest");
    r.gradients(
        "grad ",
        grads(new float[] {0.05f, 0.0f}, new float[] {9e-7f}),
        grads(new float[] {0.05f, 9e-7f}, new float[] {1e-8f}));
    assertEquals(List.of(), r.failures());
    r.assertOk();
  }

  @Test
  void gradients_errorOverAtolPlusRtolTimesLargest_fails() {
    ErrorReport r = new ErrorReport("ErrorReportTest, meant to fail");
    // Tolerance 1e-6 + 1e-5 * 0.05 = 1.5e-6; the bias-in-front-of-BN noise is off by 1.6e-6.
    r.gradients(
        "grad ",
        grads(new float[] {0.05f, 0.0f}, new float[] {1.61e-6f}),
        grads(new float[] {0.05f, 0.0f}, new float[] {1e-8f}));
    assertEquals(1, r.failures().size(), r.failures().toString());
    assertThrows(AssertionFailedError.class, r::assertOk);
  }

  @Test
  void allclose_largeValuesWithinRtol_passButSmallValuesOverAtolFail() {
    ErrorReport r = new ErrorReport("ErrorReportTest");
    // |ref| 5: allowed 1e-6 * 5 + 1e-5 * 5 = 5.5e-5 (a per-array 1e-6 * 5 would reject 4e-5).
    r.allclose("large", new float[] {5.00004f, 0.1f}, new float[] {5f, 0.1f});
    assertEquals(List.of(), r.failures());
    // max|ref| 1: an element of 0 may be off by 1e-6, not 2e-6.
    r.allclose("small", new float[] {2e-6f, 1f}, new float[] {0f, 1f});
    assertEquals(1, r.failures().size(), r.failures().toString());
  }

  @Test
  void scalar_lossOffByMoreThanStatedTolerance_fails() {
    ErrorReport r = new ErrorReport("ErrorReportTest");
    r.scalar("loss ok", 1.5 + 1.4e-5, 1.5);
    assertEquals(List.of(), r.failures());
    r.scalar("loss off", 1.5 + 1.8e-5, 1.5);
    assertEquals(1, r.failures().size());
  }
}
