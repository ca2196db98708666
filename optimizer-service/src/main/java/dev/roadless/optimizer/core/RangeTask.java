package dev.roadless.optimizer.core;

/** Work on elements [from, to) of tensor {@code tensor} (an index into the optimizer's tensors). */
@FunctionalInterface
public interface RangeTask {
  void run(int tensor, int from, int to);
}
