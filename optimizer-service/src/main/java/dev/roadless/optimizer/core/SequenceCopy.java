package dev.roadless.optimizer.core;

/** Copies one sequence of one tensor's chunk out of the state; y is derived on the way. */
final class SequenceCopy {
  private SequenceCopy() {}

  static void copy(
      Sequence sequence,
      BaseUpdate update,
      Schedule schedule,
      TensorBuffers b,
      float[] dst,
      int from,
      int to) {
    switch (sequence) {
      case EVAL -> System.arraycopy(b.x, from, dst, from, to - from);
      case BASE -> System.arraycopy(b.z, from, dst, from, to - from);
      case TRAIN -> {
        if (schedule.k() == 0) {
          System.arraycopy(b.x, from, dst, from, to - from); // y = x = z exactly before a step
        } else {
          update.deriveY(b.x, b.z, from, to, dst, from, schedule.yBeta());
        }
      }
    }
  }
}
