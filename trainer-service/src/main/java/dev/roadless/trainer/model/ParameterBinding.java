package dev.roadless.trainer.model;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Where one PyTorch tensor lives inside the DL4J network, and how its layout differs. DL4J keeps a
 * dense weight as {@code [in, out]} (PyTorch: {@code [out, in]}) and biases and BatchNorm vectors
 * as {@code [1, C]}; convolution weights share PyTorch's {@code [out, in, kh, kw]}.
 */
record ParameterBinding(ModelTensor tensor, int layerIndex, String dl4jKey, boolean transposed) {

  /** The DL4J gradient/parameter map key, {@code "<layer>_<param>"}. */
  String gradientKey() {
    return layerIndex + "_" + dl4jKey;
  }

  /** DL4J array (parameter or gradient view) to PyTorch layout, as a fresh float array. */
  float[] toTorch(INDArray dl4j) {
    INDArray a = transposed ? dl4j.transpose() : dl4j;
    return a.dup('c').data().asFloat();
  }

  /** PyTorch-layout values to an array of the DL4J parameter's shape. */
  INDArray toDl4j(float[] torch, long[] dl4jShape) {
    if (torch.length != tensor.size()) {
      throw new IllegalArgumentException(
          tensor.name() + " needs " + tensor.size() + " values, got " + torch.length);
    }
    int[] s = tensor.shape();
    if (transposed) {
      return Nd4j.create(torch, new long[] {s[0], s[1]}, 'c').transpose();
    }
    return Nd4j.create(torch, dl4jShape, 'c');
  }
}
