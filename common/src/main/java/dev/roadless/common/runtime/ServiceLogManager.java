package dev.roadless.common.runtime;

import java.util.logging.LogManager;

/**
 * The services' LogManager. The JDK's own resets logging from a shutdown hook of its own, which
 * runs at the same time as a service's draining hook: every line logged while draining ("shutdown
 * requested", "stopped", final snapshots) was lost. This manager ignores resets while a service
 * holds it ({@link #hold}) and resets once that service's drain is done ({@link #release}).
 *
 * <p>Selected with the {@code java.util.logging.manager} property before the JDK's LogManager is
 * first touched: see {@link JsonLogFormatter#selectLogManager}.
 */
public final class ServiceLogManager extends LogManager {
  private volatile boolean held;

  /** The JDK instantiates it by name. */
  public ServiceLogManager() {}

  @Override
  public void reset() {
    if (!held) {
      super.reset();
    }
  }

  /** From now on resets wait for {@link #release}. No effect under another LogManager. */
  public static void hold() {
    if (LogManager.getLogManager() instanceof ServiceLogManager m) {
      m.held = true;
    }
  }

  /** The service has logged its last line: reset (flush and close the handlers) now. */
  public static void release() {
    if (LogManager.getLogManager() instanceof ServiceLogManager m) {
      m.held = false;
      m.reset();
    }
  }
}
