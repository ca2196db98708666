package dev.roadless.optimizer.core;

/** Which of the three Schedule-Free sequences a read returns. */
public enum Sequence {
  /** y = beta*x + (1-beta)*z: where trainers compute gradients. */
  TRAIN,
  /** x: the weighted average of z; use it to evaluate, export or fine-tune. */
  EVAL,
  /** z: the base iterate that the base optimizer moves. */
  BASE
}
