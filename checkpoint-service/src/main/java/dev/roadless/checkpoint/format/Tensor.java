package dev.roadless.checkpoint.format;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A named tensor as stored in a safetensors file: element type, shape (outermost first; empty for a
 * scalar) and raw little-endian row-major data.
 *
 * @param name the PyTorch state_dict key, for example {@code fc1.weight} or {@code
 *     bn1.running_mean}
 * @param dtype element type
 * @param shape dimensions, each >= 0; the data holds their product of elements
 * @param data little-endian elements
 */
public record Tensor(String name, Dtype dtype, long[] shape, byte[] data) {
  /** The element types Roadless writes, with their safetensors names. */
  public enum Dtype {
    F32(4),
    I64(8);

    private final int bytes;

    Dtype(int bytes) {
      this.bytes = bytes;
    }

    /** Bytes per element. */
    public int bytes() {
      return bytes;
    }
  }

  public Tensor {
    shape = shape.clone();
    long n = elements(shape);
    if (name.isEmpty() || data.length != n * dtype.bytes()) {
      throw new IllegalArgumentException(
          "tensor '" + name + "' " + Arrays.toString(shape) + " has " + data.length + " bytes");
    }
  }

  /** A float32 tensor (values copied). */
  public static Tensor ofFloats(String name, long[] shape, float[] values) {
    ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(values);
    return new Tensor(name, Dtype.F32, shape, b.array());
  }

  /** An int64 scalar (shape []), like BatchNorm's {@code num_batches_tracked}. */
  public static Tensor ofLongScalar(String name, long value) {
    ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, value);
    return new Tensor(name, Dtype.I64, new long[0], b.array());
  }

  /** The product of the dimensions (1 for a scalar). */
  public static long elements(long[] shape) {
    long n = 1;
    for (long d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException("negative dimension in " + Arrays.toString(shape));
      }
      n = Math.multiplyExact(n, d);
    }
    return n;
  }

  /** The elements of a float32 tensor. */
  public float[] floats() {
    require(Dtype.F32);
    float[] out = new float[data.length / 4];
    ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
    return out;
  }

  /** The elements of an int64 tensor. */
  public long[] longs() {
    require(Dtype.I64);
    long[] out = new long[data.length / 8];
    ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().get(out);
    return out;
  }

  @Override
  public long[] shape() {
    return shape.clone();
  }

  private void require(Dtype d) {
    if (dtype != d) {
      throw new IllegalStateException(name + " is " + dtype + ", not " + d);
    }
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Tensor t
        && t.name.equals(name)
        && t.dtype == dtype
        && Arrays.equals(t.shape, shape)
        && Arrays.equals(t.data, data);
  }

  @Override
  public int hashCode() {
    return name.hashCode() * 31 + Arrays.hashCode(data);
  }

  @Override
  public String toString() {
    return name + ":" + dtype + Arrays.toString(shape);
  }
}
