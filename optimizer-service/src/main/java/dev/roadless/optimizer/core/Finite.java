package dev.roadless.optimizer.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

/**
 * The finiteness scan the core and the server share (gradients, initial values, imported state).
 */
public final class Finite {
  /**
   * Whether {@link VectorScan} runs: the JVM was started with {@code --add-modules
   * jdk.incubator.vector} and the module has the JDK 17 API (later JDKs replaced {@code
   * fromByteBuffer}, which a probe at start-up finds out).
   */
  static final boolean VECTOR = vectorWorks();

  private Finite() {}

  /**
   * True when no element is NaN or infinite: {@code a - a} is 0 for a finite value and NaN
   * otherwise, and a sum of those stays 0 only if all are 0. Eight independent sums, because a
   * single loop-carried reduction runs at half the memory bandwidth on JDK 17.
   */
  public static boolean all(float[] a, int from, int to) {
    return VECTOR ? VectorScan.all(a, from, to) : scalarAll(a, from, to);
  }

  private static boolean vectorWorks() {
    if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
      return false;
    }
    try {
      int n = 256; // more than the widest vector's lanes, so every vector call links
      float[] a = new float[n];
      ByteBuffer b = ByteBuffer.allocate(4 * n);
      return VectorScan.all(a, 0, n)
          && VectorScan.bounded(a, 0, n)
          && VectorScan.allIn(b, 0, n)
          && VectorScan.addDivide(a, 0, a, n, 2f);
    } catch (LinkageError e) {
      return false;
    }
  }

  static boolean scalarAll(float[] a, int from, int to) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    int i = from;
    for (; i + 8 <= to; i += 8) {
      s0 += a[i] - a[i];
      s1 += a[i + 1] - a[i + 1];
      s2 += a[i + 2] - a[i + 2];
      s3 += a[i + 3] - a[i + 3];
      s4 += a[i + 4] - a[i + 4];
      s5 += a[i + 5] - a[i + 5];
      s6 += a[i + 6] - a[i + 6];
      s7 += a[i + 7] - a[i + 7];
    }
    for (; i < to; i++) {
      s0 += a[i] - a[i];
    }
    return (s0 + s1 + s2 + s3) + (s4 + s5 + s6 + s7) == 0;
  }

  /**
   * True when every element is finite and below 2^111 (about 2.6e33) in magnitude: {@code a * 2^17}
   * is then finite too. No float32 sum of up to 1024 such values (the most replicas a run may have)
   * overflows, so a replica mean of bounded gradients needs no check of its own. The same speed as
   * {@link #all}.
   */
  public static boolean bounded(float[] a, int from, int to) {
    return VECTOR ? VectorScan.bounded(a, from, to) : scalarBounded(a, from, to);
  }

  static boolean scalarBounded(float[] a, int from, int to) {
    final float k = 0x1p17f;
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    int i = from;
    for (; i + 8 <= to; i += 8) {
      float t0 = a[i] * k, t1 = a[i + 1] * k, t2 = a[i + 2] * k, t3 = a[i + 3] * k;
      float t4 = a[i + 4] * k, t5 = a[i + 5] * k, t6 = a[i + 6] * k, t7 = a[i + 7] * k;
      s0 += t0 - t0;
      s1 += t1 - t1;
      s2 += t2 - t2;
      s3 += t3 - t3;
      s4 += t4 - t4;
      s5 += t5 - t5;
      s6 += t6 - t6;
      s7 += t7 - t7;
    }
    for (; i < to; i++) {
      float t = a[i] * k;
      s0 += t - t;
    }
    return (s0 + s1 + s2 + s3) + (s4 + s5 + s6 + s7) == 0;
  }

  /**
   * True when the {@code count} little-endian float32 values at byte {@code srcByte} of {@code src}
   * are all finite: a scan in place, without a copy.
   */
  public static boolean allIn(ByteBuffer src, int srcByte, int count) {
    return VECTOR ? VectorScan.allIn(src, srcByte, count) : scalarAllIn(src, srcByte, count);
  }

  static boolean scalarAllIn(ByteBuffer src, int srcByte, int count) {
    FloatBuffer f =
        src.duplicate().order(ByteOrder.LITTLE_ENDIAN).position(srcByte).asFloatBuffer();
    float s = 0;
    for (int i = 0; i < count; i++) {
      float v = f.get(i);
      s += v - v;
    }
    return s == 0;
  }

  /**
   * True when, for every element, the float32 sum of {@code parts[0][i] + parts[1][i] + ...} in
   * that order is finite: then every part is finite too, and so is their mean. One scan instead of
   * one per part, and it also catches finite parts whose sum overflows.
   */
  public static boolean sumAll(float[][] parts, int from, int to) {
    if (parts.length == 1) {
      return all(parts[0], from, to);
    }
    float[] a = parts[0];
    float[] b = parts[1];
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    if (parts.length == 2) {
      int i = from;
      for (; i + 4 <= to; i += 4) {
        float v0 = a[i] + b[i];
        float v1 = a[i + 1] + b[i + 1];
        float v2 = a[i + 2] + b[i + 2];
        float v3 = a[i + 3] + b[i + 3];
        s0 += v0 - v0;
        s1 += v1 - v1;
        s2 += v2 - v2;
        s3 += v3 - v3;
      }
      for (; i < to; i++) {
        float v = a[i] + b[i];
        s0 += v - v;
      }
      return (s0 + s1) + (s2 + s3) == 0;
    }
    for (int i = from; i < to; i++) {
      float v = sumAt(parts, i);
      s0 += v - v;
    }
    return s0 == 0;
  }

  /** {@code parts[0][i] + parts[1][i] + ...} in float32, left to right. */
  public static float sumAt(float[][] parts, int i) {
    float v = parts[0][i];
    for (int r = 1; r < parts.length; r++) {
      v += parts[r][i];
    }
    return v;
  }
}
