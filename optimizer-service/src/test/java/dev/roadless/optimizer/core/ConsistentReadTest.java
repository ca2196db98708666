package dev.roadless.optimizer.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** Reads racing steps always see one whole step, never a torn mix. */
class ConsistentReadTest {
  private static final int N = 3 * 65536 + 11;

  @Test
  void read_concurrentWithSteps_seesOneWholeStep() throws Exception {
    // Every element starts equal and gets equal gradients, so within one step all elements of
    // both tensors are equal; a read that mixed two steps would show two values.
    Hyperparameters hp = Hyperparameters.defaults(Variant.ADAMW).toBuilder().lr(0.01).build();
    try (ScheduleFreeOptimizer opt =
        new ScheduleFreeOptimizer(
            Variant.ADAMW,
            List.of(TensorSpec.of("a", N), TensorSpec.of("b", N)),
            List.of(new GroupSpec("g", List.of("a", "b"), hp)),
            2)) {
      float[] init = new float[N];
      Arrays.fill(init, 1f);
      opt.setInitialValues(Map.of("a", init, "b", init));
      AtomicBoolean done = new AtomicBoolean();
      AtomicReference<String> torn = new AtomicReference<>();
      AtomicInteger reads = new AtomicInteger();
      CountDownLatch started = new CountDownLatch(1);
      Thread reader =
          new Thread(
              () -> {
                float[] a = new float[N];
                float[] b = new float[N];
                started.countDown();
                while (!done.get() && torn.get() == null) {
                  for (Sequence s : Sequence.values()) {
                    long k = opt.read(s, Map.of("a", a, "b", b));
                    reads.incrementAndGet();
                    for (int i = 0; i < N; i++) {
                      if (a[i] != a[0] || b[i] != a[0]) {
                        torn.set(s + " at step " + k + " element " + i);
                        return;
                      }
                    }
                  }
                }
              });
      reader.start();
      started.await();
      float[] g = new float[N];
      for (int s = 0; s < 60; s++) {
        Arrays.fill(g, (float) Math.sin(s + 1));
        opt.step(Map.of("a", new float[][] {g}, "b", new float[][] {g}));
      }
      done.set(true);
      reader.join();
      assertEquals(null, torn.get());
      assertTrue(reads.get() > 0);
    }
  }
}
