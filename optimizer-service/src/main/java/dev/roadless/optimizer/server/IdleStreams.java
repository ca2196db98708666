package dev.roadless.optimizer.server;

import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Closes client streams that send nothing for too long while the server waits for them (a push
 * header and no data, a stream opened and never used), so an idle or abandoned stream cannot hold a
 * push buffer or a slot forever. The wait for the other replicas of a SYNC step, and for the
 * server's own answer, never counts: only the client's turn does. One timer thread per server.
 */
final class IdleStreams implements AutoCloseable {
  private final long idleNanos;
  private final Set<InboundStream<?>> streams = ConcurrentHashMap.newKeySet();
  private final ScheduledExecutorService timer;

  /**
   * @param idle the longest a client's turn may last; zero turns the check off
   */
  IdleStreams(Duration idle) {
    this.idleNanos = idle.toNanos();
    if (idleNanos <= 0) {
      timer = null;
      return;
    }
    timer =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "roadless-idle-streams");
              t.setDaemon(true);
              return t;
            });
    long every =
        Math.max(TimeUnit.MILLISECONDS.toNanos(50), Math.min(idleNanos / 4, 1_000_000_000L));
    timer.scheduleWithFixedDelay(this::sweep, every, every, TimeUnit.NANOSECONDS);
  }

  /** A stream that is not checked at all (tools and tests without a server). */
  static IdleStreams off() {
    return new IdleStreams(Duration.ZERO);
  }

  void add(InboundStream<?> stream) {
    if (timer != null) {
      streams.add(stream);
    }
  }

  void remove(InboundStream<?> stream) {
    streams.remove(stream);
  }

  /** Streams being watched (for tests and metrics). */
  int watched() {
    return streams.size();
  }

  private void sweep() {
    long now = System.nanoTime();
    for (InboundStream<?> s : streams) {
      if (s.clientIdleNanos(now) > idleNanos) {
        streams.remove(s);
        s.expire(TimeUnit.NANOSECONDS.toMillis(idleNanos));
      }
    }
  }

  @Override
  public void close() {
    if (timer != null) {
      timer.shutdownNow();
    }
  }
}
