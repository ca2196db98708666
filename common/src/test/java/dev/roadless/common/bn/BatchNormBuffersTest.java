package dev.roadless.common.bn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class BatchNormBuffersTest {
  @Test
  void update_momentum_blendsWithUnbiasedVariance() {
    BatchNormBuffers b = BatchNormBuffers.fresh(1, 0.1);
    b.update(new float[] {2f}, new float[] {3f}, 4); // unbiased = 3 * 4/3 = 4
    assertArrayEquals(new float[] {(float) (0.1 * 2)}, b.runningMean());
    assertArrayEquals(new float[] {(float) (0.1 * 4 + 0.9 * 1)}, b.runningVar());
    assertEquals(1, b.numBatchesTracked());
  }

  @Test
  void update_nullMomentum_isTheArithmeticMeanOfBatches() {
    BatchNormBuffers b = BatchNormBuffers.fresh(1, null);
    b.update(new float[] {1f}, new float[] {1f}, 2);
    b.update(new float[] {3f}, new float[] {2f}, 2);
    b.update(new float[] {8f}, new float[] {3f}, 2);
    assertArrayEquals(new float[] {4f}, b.runningMean(), 1e-6f);
    assertArrayEquals(new float[] {4f}, b.runningVar(), 1e-6f); // (2 + 4 + 6) / 3
    assertEquals(3, b.numBatchesTracked());
  }

  @Test
  void reset_restoresPyTorchInitialValues() {
    BatchNormBuffers b = BatchNormBuffers.fresh(2, 0.1);
    b.update(new float[] {5f, 5f}, new float[] {5f, 5f}, 10);
    b.reset();
    assertArrayEquals(new float[] {0f, 0f}, b.runningMean());
    assertArrayEquals(new float[] {1f, 1f}, b.runningVar());
    assertEquals(0, b.numBatchesTracked());
  }

  @Test
  void update_singleValuePerChannel_isRefusedLikePyTorch() {
    BatchNormBuffers b = BatchNormBuffers.fresh(1, 0.1);
    assertThrows(
        IllegalArgumentException.class, () -> b.update(new float[] {1}, new float[] {0}, 1));
  }
}
