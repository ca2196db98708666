package dev.roadless.optimizer.server;

import dev.roadless.optimizer.run.ParameterSnapshot;
import dev.roadless.optimizer.wire.FloatChunkOut;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One parameter answer (GetParameters, or a step's answer on Train): a header, the float32 chunks
 * of a held snapshot in the requested tensor order, an end message. Chunks are made one at a time
 * as the transport asks for them and are serialized straight from the snapshot ({@link
 * FloatChunkOut}): a block at a time through {@link ParameterSnapshot#read}, which derives y from
 * the run's state while the run is still at the snapshot's step, so y is never stored.
 *
 * <p>The snapshot is released once this iterator is exhausted or closed and every chunk it made has
 * been written or dropped by gRPC, whichever comes last; until then a step detaching the snapshot
 * stores its y first.
 */
final class ParameterMessages implements Iterator<Object>, AutoCloseable {
  private final Object header;
  private final Object end;
  private final ParameterSnapshot snapshot;
  private final List<Integer> order;
  private final int chunkElements;

  /** This iterator's own hold plus one per chunk not yet written. */
  private final AtomicInteger holds = new AtomicInteger(1);

  private boolean headerSent;
  private boolean endSent;
  private boolean ownHoldDropped;
  private int position;
  private int offset;

  /**
   * @param snapshot held for this answer; released by this object
   * @param order indices of the tensors to send, in sending order
   */
  ParameterMessages(
      Object header, ParameterSnapshot snapshot, List<Integer> order, int chunkBytes, Object end) {
    this.header = header;
    this.end = end;
    this.snapshot = snapshot;
    this.order = order;
    this.chunkElements = Math.max(1, chunkBytes / 4);
    skipEmpty();
  }

  @Override
  public synchronized boolean hasNext() {
    return !endSent;
  }

  @Override
  public synchronized Object next() {
    if (!headerSent) {
      headerSent = true;
      return header;
    }
    if (position < order.size()) {
      int t = order.get(position);
      int n = Math.min(chunkElements, snapshot.length(t) - offset);
      holds.incrementAndGet();
      FloatChunkOut chunk =
          new FloatChunkOut(
              snapshot.names().get(t),
              (from, dst, count) -> snapshot.read(t, from, dst, 0, count),
              offset,
              n,
              this::dropHold);
      offset += n;
      skipEmpty();
      return chunk;
    }
    if (endSent) {
      throw new NoSuchElementException();
    }
    endSent = true;
    dropOwnHold();
    return end;
  }

  /** Lets the snapshot go if the answer will not be finished (the call was cancelled). */
  @Override
  public synchronized void close() {
    dropOwnHold();
  }

  private void skipEmpty() {
    while (position < order.size() && offset >= snapshot.length(order.get(position))) {
      position++;
      offset = 0;
    }
  }

  private void dropOwnHold() {
    if (!ownHoldDropped) {
      ownHoldDropped = true;
      dropHold();
    }
  }

  private void dropHold() {
    if (holds.decrementAndGet() == 0) {
      snapshot.release();
    }
  }
}
