package dev.roadless.trainer.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.trainer.data.Batch;
import dev.roadless.trainer.data.Mnist;
import org.deeplearning4j.nn.gradient.Gradient;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;

class GradientReaderTest {
  @Test
  void read_everyTrainableTensor_takesTheBulkPathAndEqualsTheGenericCopy() {
    for (ModelSpec spec :
        new ModelSpec[] {ModelSpec.mlp(784, 16, 10), ModelSpec.cnn(1, 28, 28, 4, 8, 10)}) {
      Model m = Model.create(spec, 2);
      Batch b = Mnist.train().range(0, 8);
      m.computeGradient(b.inputs(), b.labels(), b.size());
      Gradient g = m.network().gradient();
      INDArray flat = m.network().getFlattenedGradients();
      float[] all = GradientReader.bulk(flat);
      for (ModelTensor t : m.trainableTensors()) {
        ParameterBinding binding = binding(m, t.name());
        INDArray view = g.getGradientFor(binding.gradientKey());
        assertTrue(GradientReader.isFast(binding, view, flat), t.name());
        assertArrayEquals(binding.toTorch(view), GradientReader.read(binding, view, flat, all));
      }
    }
  }

  private static ParameterBinding binding(Model m, String name) {
    return NetworkFactory.build(m.spec()).parameters().stream()
        .filter(p -> p.tensor().name().equals(name))
        .findFirst()
        .orElseThrow();
  }
}
