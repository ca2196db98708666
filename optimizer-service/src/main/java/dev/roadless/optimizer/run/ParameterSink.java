package dev.roadless.optimizer.run;

import dev.roadless.optimizer.core.YSink;

/**
 * Where a push wants y of the step it takes part in, written by the step kernel as it goes ({@link
 * YSink}): the shared-memory transport puts y into the replica's segment while it is still in
 * cache. A push answered as a duplicate, or refused, never reaches it.
 */
public interface ParameterSink extends YSink {
  /** The step is applied and every range went through {@link #range}: y is y_{step}. */
  void written(long step);
}
