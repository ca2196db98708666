package dev.roadless.optimizer.client;

/**
 * Process-wide Netty settings for streaming tensors, applied before gRPC creates its buffer pool
 * (they have no effect after that, and none if the user set them already).
 *
 * <p>gRPC shrinks Netty's pool chunks to 2 MiB (maxOrder 8). A 40 MB stream keeps up to a
 * flow-control window of receive buffers alive; each chunk that fills and empties again is freed
 * and the next step allocates and zeroes a new one (thousands of page faults per step, measured as
 * a quarter of the client's CPU). With Netty's own 16 MiB chunks (maxOrder 11) the chunks stay
 * allocated and are reused.
 */
public final class NettyTuning {
  /** The shaded Netty's pool property (maxOrder 11: 8 KiB pages &lt;&lt; 11 = 16 MiB chunks). */
  public static final String MAX_ORDER = "io.grpc.netty.shaded.io.netty.allocator.maxOrder";

  private NettyTuning() {}

  /**
   * Netty's leak detector: by default it records a stack trace for one buffer in 128, about 1.5% of
   * the server's CPU at 10M parameters. Our receive buffers are released by {@code InboundChunk}
   * (with a cleaner as a safety net); set the property to {@code simple} to look for leaks.
   */
  public static final String LEAK_DETECTION = "io.grpc.netty.shaded.io.netty.leakDetection.level";

  /** Sets both properties unless the user chose them; call before the first channel. */
  public static void apply() {
    if (System.getProperty(MAX_ORDER) == null) {
      System.setProperty(MAX_ORDER, "11");
    }
    if (System.getProperty(LEAK_DETECTION) == null) {
      System.setProperty(LEAK_DETECTION, "disabled");
    }
  }
}
