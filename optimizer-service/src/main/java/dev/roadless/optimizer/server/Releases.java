package dev.roadless.optimizer.server;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * What a streamed answer holds while it is sent (a concurrency slot, admitted memory), given back
 * once: when the last message is written, or when the call is cancelled and the pump closes the
 * stream's source ({@link #around}).
 */
final class Releases implements AutoCloseable {
  private final List<AutoCloseable> held = new ArrayList<>();
  private boolean closed;

  Releases(AutoCloseable first) {
    held.add(first);
  }

  synchronized void add(AutoCloseable more) {
    held.add(more);
  }

  /** {@code messages}, closing this when the pump drops them (a cancelled call). */
  <T> Iterator<T> around(Iterator<T> messages) {
    return new Source<>(messages, this);
  }

  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    for (AutoCloseable c : held) {
      try {
        c.close();
      } catch (Exception ignored) {
        // a grant or a permit does not fail to close
      }
    }
  }

  private record Source<T>(Iterator<T> messages, Releases releases)
      implements Iterator<T>, AutoCloseable {
    @Override
    public boolean hasNext() {
      return messages.hasNext();
    }

    @Override
    public T next() {
      return messages.next();
    }

    @Override
    public void close() {
      releases.close();
    }
  }
}
