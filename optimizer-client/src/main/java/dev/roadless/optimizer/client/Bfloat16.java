package dev.roadless.optimizer.client;

/** float32 to bfloat16 with round-to-nearest-even, as PyTorch's {@code .bfloat16()} does. */
public final class Bfloat16 {
  private Bfloat16() {}

  public static short fromFloat(float f) {
    int bits = Float.floatToRawIntBits(f);
    if (Float.isNaN(f)) {
      return (short) ((bits >>> 16) | 0x40); // keep it a quiet NaN
    }
    int rounding = 0x7FFF + ((bits >>> 16) & 1);
    return (short) ((bits + rounding) >>> 16);
  }

  public static float toFloat(short b) {
    return Float.intBitsToFloat((b & 0xFFFF) << 16);
  }
}
