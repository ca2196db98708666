package dev.roadless.optimizer.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The shared scans: every position of the unrolled loops, the bound's promise, and the Vector API
 * path (which the build's tests run with) against the scalar one.
 */
class FiniteTest {
  private static final float[] NON_FINITE = {
    Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY
  };

  @Test
  void all_andBounded_findANonFiniteValueAtEveryPosition() {
    float[] a = new float[37];
    Arrays.fill(a, -1.5f);
    for (int i = 3; i < 37; i++) {
      for (float bad : NON_FINITE) {
        a[i] = bad;
        assertFalse(Finite.all(a, 3, 37), i + " " + bad);
        assertFalse(Finite.bounded(a, 3, 37), i + " " + bad);
        assertTrue(Finite.all(a, 3, i), "before " + i);
        assertTrue(Finite.bounded(a, i + 1, 37), "after " + i);
      }
      a[i] = -1.5f;
    }
  }

  @Test
  void bounded_isFalseFrom2To111_andAThousandBoundedValuesSumFinite() {
    float largest = Math.nextDown(0x1p111f);
    float[] a = new float[1024];
    Arrays.fill(a, largest);
    assertTrue(Finite.bounded(a, 0, a.length));
    float sum = 0;
    for (float v : a) {
      sum += v;
    }
    assertTrue(Float.isFinite(sum) && Float.isFinite(sum / a.length));
    for (float big : new float[] {0x1p111f, -0x1p111f, Float.MAX_VALUE}) {
      a[700] = big;
      assertFalse(Finite.bounded(a, 0, a.length), Float.toString(big));
      assertTrue(Finite.all(a, 0, a.length));
    }
  }

  @Test
  void sumAll_catchesFiniteValuesWhoseSumOverflows_inReplicaOrder() {
    float[][] parts = {new float[11], new float[11], new float[11]};
    assertTrue(Finite.sumAll(parts, 0, 11));
    parts[0][9] = 3e38f;
    parts[1][9] = 3e38f;
    parts[2][9] = -3e38f; // the exact sum is finite; left to right it overflows at the second
    assertFalse(Finite.sumAll(parts, 0, 11));
    assertEquals(Float.POSITIVE_INFINITY, Finite.sumAt(parts, 9));
    assertTrue(Finite.sumAll(new float[][] {parts[0], parts[2]}, 0, 11));
    parts[0][9] = Float.NaN;
    assertFalse(Finite.sumAll(new float[][] {parts[0]}, 0, 11));
  }

  @Test
  void vectorPath_isOn_inTheseTests() {
    assertTrue(
        Finite.VECTOR,
        "tests run with --add-modules=jdk.incubator.vector on JDK 17 (optimizer-service/pom.xml)");
  }

  /** Random lengths, offsets and special values: both paths give the same answers and bits. */
  @Test
  void vectorAndScalar_agree_onValuesAndVerdicts() {
    SplittableRandom r = new SplittableRandom(42);
    float[] specials = {
      Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 3e38f, -2e38f, 0x1p111f, -0f
    };
    for (int trial = 0; trial < 400; trial++) {
      int n = r.nextInt(1, 300);
      int from = r.nextInt(0, 40);
      int to = from + n;
      float[] a = new float[to + r.nextInt(0, 20)];
      float[] other = new float[a.length];
      for (int i = 0; i < a.length; i++) {
        a[i] = (float) r.nextGaussian();
        other[i] = (float) r.nextGaussian();
      }
      int hits = r.nextInt(0, 3);
      for (int h = 0; h < hits; h++) {
        a[from + r.nextInt(n)] = specials[r.nextInt(specials.length)];
      }
      if (r.nextBoolean()) {
        other[from + r.nextInt(n)] = specials[3 + r.nextInt(3)];
      }
      String at = "trial " + trial;
      assertEquals(Finite.scalarAll(a, from, to), VectorScan.all(a, from, to), at);
      assertEquals(Finite.scalarBounded(a, from, to), VectorScan.bounded(a, from, to), at);

      int srcByte = 4 * r.nextInt(0, 8) + r.nextInt(0, 2) * 4;
      ByteBuffer src = ByteBuffer.allocate(srcByte + 4 * n).order(ByteOrder.LITTLE_ENDIAN);
      for (int i = 0; i < n; i++) {
        src.putFloat(srcByte + 4 * i, a[from + i]);
      }
      assertEquals(Finite.scalarAllIn(src, srcByte, n), VectorScan.allIn(src, srcByte, n), at);
      // The one replica mean, with one input read from bytes (the staged, vector path) and with
      // both in arrays (the plain loops): (a + other) / 2 in float32, bit for bit.
      ReplicaMean.Input fromBytes =
          new ReplicaMean.Input() {
            @Override
            public float[] array(int tensor) {
              return null;
            }

            @Override
            public void read(int tensor, int first, float[] dst, int dstAt, int count) {
              for (int j = 0; j < count; j++) {
                dst[dstAt + j] = src.getFloat(srcByte + 4 * (first - from + j));
              }
            }

            @Override
            public float valueAt(int tensor, int element) {
              return src.getFloat(srcByte + 4 * (element - from));
            }
          };
      ReplicaMean.Input others = ReplicaMean.of(new float[][] {other});
      float[] staged = new float[a.length];
      float[] plain = new float[a.length];
      ReplicaMean.chunk(new ReplicaMean.Input[] {fromBytes, others}, 0, from, to, staged, false);
      ReplicaMean.chunk(
          new ReplicaMean.Input[] {ReplicaMean.of(new float[][] {a}), others},
          0,
          from,
          to,
          plain,
          false);
      for (int i = from; i < to; i++) {
        assertEquals(
            Float.floatToRawIntBits((a[i] + other[i]) / 2f),
            Float.floatToRawIntBits(staged[i]),
            at + " element " + i);
      }
      assertTrue(Arrays.equals(plain, staged), at);
    }
  }
}
