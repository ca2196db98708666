package dev.roadless.optimizer.core;

/**
 * A destination the step kernel writes y into as it goes, handed to {@link
 * ScheduleFreeOptimizer#stepFiniteGradients(float[][], float[][], YSink[])}: for every chunk, as
 * soon as its y is final and still in that core's cache. The kernel calls it on its own threads,
 * concurrently for different chunks, under the optimizer's write lock, so it must be quick. The
 * kernel ignores a sink that throws (the rest of the state must still be written); a sink that can
 * fail must remember that itself.
 */
@FunctionalInterface
public interface YSink {
  /** Elements [from, to) of tensor {@code tensor} of {@code y} (the whole y arrays) are final. */
  void range(float[][] y, int tensor, int from, int to);
}
