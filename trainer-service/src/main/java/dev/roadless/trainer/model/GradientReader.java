package dev.roadless.trainer.model;

import java.util.Arrays;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Copies gradient (or parameter) views out of DL4J's flattened buffer in PyTorch layout.
 *
 * <p>Every PyTorch tensor is a contiguous run of DL4J's flattened gradient buffer: a dense weight
 * is stored {@code 'f'}-ordered as {@code [in, out]}, which is PyTorch's row-major {@code [out,
 * in]}; convolution weights, biases and BatchNorm vectors are stored row-major. One bulk copy of
 * the buffer plus {@code System.arraycopy} per tensor replaces a {@code dup} and a copy per tensor.
 * A view that is not laid out like that (never seen with DL4J M2.1) falls back to the generic path.
 */
final class GradientReader {
  private GradientReader() {}

  /** The view's values in PyTorch layout, taken from {@code all} (the buffer) when contiguous. */
  static float[] read(ParameterBinding b, INDArray view, INDArray flat, float[] all) {
    if (all != null && isFast(b, view, flat)) {
      long off = view.offset();
      int n = (int) view.length();
      return Arrays.copyOfRange(all, (int) off, (int) off + n);
    }
    return b.toTorch(view);
  }

  /** A contiguous vector slot (BatchNorm mean/variance), same rule. */
  static float[] readVector(INDArray view, INDArray flat, float[] all) {
    if (all != null && sharesBuffer(view, flat) && view.elementWiseStride() == 1) {
      long off = view.offset();
      return Arrays.copyOfRange(all, (int) off, (int) (off + view.length()));
    }
    return view.dup('c').data().asFloat();
  }

  /** The whole flattened buffer, or null when it is too large to copy in one piece. */
  static float[] bulk(INDArray flat) {
    if (flat == null || flat.data().length() > Integer.MAX_VALUE - 8) {
      return null;
    }
    return flat.data().asFloat();
  }

  /** Whether {@link #read} takes the bulk path for this view. */
  static boolean isFast(ParameterBinding b, INDArray view, INDArray flat) {
    return sharesBuffer(view, flat) && isTorchContiguous(b, view);
  }

  /** True when {@code view.offset()} indexes {@code flat}'s buffer (a view of it). */
  private static boolean sharesBuffer(INDArray view, INDArray flat) {
    return flat.offset() == 0
        && (view.data() == flat.data() || view.data().originalDataBuffer() == flat.data());
  }

  private static boolean isTorchContiguous(ParameterBinding b, INDArray v) {
    long[] shape = v.shape();
    long[] stride = v.stride();
    if (b.transposed()) {
      // [in, out] in 'f' order: strides (1, in).
      return shape.length == 2 && stride[0] == 1 && stride[1] == shape[0];
    }
    long expected = 1;
    for (int i = shape.length - 1; i >= 0; i--) {
      if (shape[i] != 1 && stride[i] != expected) {
        return false;
      }
      expected *= shape[i];
    }
    return true;
  }
}
