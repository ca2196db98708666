package dev.roadless.optimizer.run;

/**
 * Where a pipelined push's early y goes (a Train stream that asked for early parameters): each
 * range of the next y as soon as every replica's gradient for it has arrived. Called under the
 * run's lock, so both methods must be quick and must not block.
 */
public interface EarlyParameters {
  /**
   * Encodes elements {@code [from, from + n)} of tensor {@code tensor}, whose new y is {@code y[0,
   * n)} (a scratch array, valid only during the call), as the message to send. Called once per
   * range for all subscribers: every replica's stream sends the same message object.
   */
  Object encode(int tensor, int from, float[] y, int n);

  /** Queues a message made by {@link #encode} for sending. */
  void send(Object message);

  /** Every subscriber has queued {@code message} (called on the encoder's instance). */
  default void done(Object message) {}
}
