package dev.roadless.optimizer.wire;

import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.channel.AdaptiveRecvByteBufAllocator;
import io.grpc.netty.shaded.io.netty.channel.ChannelOption;
import io.grpc.netty.shaded.io.netty.channel.WriteBufferWaterMark;

/**
 * Socket settings for connections that stream tensors, on both ends (the server's accepted
 * connections and the client's channel). Netty's defaults suit many small messages; a 40 MB stream
 * pays for them per few kilobytes:
 *
 * <ul>
 *   <li>Write buffer water marks. Netty's HTTP/2 flow controller hands frames to the socket only
 *       while the channel is writable, that is while less than the high water mark (64 KiB by
 *       default) waits to be written. A stream then moves 64 KiB per pass through the flow
 *       controller, the socket write and the writability event; with 4 MiB the same pass moves up
 *       to 4 MiB in one gathering write.
 *   <li>Receive buffer sizes. Netty guesses each read's buffer between 64 B and 64 KiB; a stream
 *       then takes one system call, one pooled buffer and one more component of the composite
 *       cumulation ({@link CompositeCumulation}) per 64 KiB. Up to 1 MiB per read here; the guess
 *       still shrinks for connections that carry small messages.
 * </ul>
 *
 * <p>Neither changes a byte on the wire. Memory: the water mark bounds what one connection queues
 * for the kernel (4 MiB); the receive buffers are pooled and released as the chunks in them are
 * decoded, within the flow-control window.
 */
public final class SocketTuning {
  /** Below this many queued bytes a connection is writable again. */
  public static final int LOW_WATER_MARK = 1 << 20;

  /** Above this many queued bytes a connection stops taking frames from the flow controller. */
  public static final int HIGH_WATER_MARK = 4 << 20;

  /** The smallest, first and largest receive buffer a read may get. */
  public static final int MIN_READ = 64;

  public static final int INITIAL_READ = 64 << 10;
  public static final int MAX_READ = 1 << 20;

  private SocketTuning() {}

  /** Applies the settings to the connections a server accepts. */
  public static NettyServerBuilder server(NettyServerBuilder builder) {
    return builder
        .withChildOption(ChannelOption.WRITE_BUFFER_WATER_MARK, waterMark())
        .withChildOption(ChannelOption.RCVBUF_ALLOCATOR, readSizes());
  }

  /** Applies the settings to a client channel's connections. */
  public static NettyChannelBuilder channel(NettyChannelBuilder builder) {
    return builder
        .withOption(ChannelOption.WRITE_BUFFER_WATER_MARK, waterMark())
        .withOption(ChannelOption.RCVBUF_ALLOCATOR, readSizes());
  }

  private static WriteBufferWaterMark waterMark() {
    return new WriteBufferWaterMark(LOW_WATER_MARK, HIGH_WATER_MARK);
  }

  private static AdaptiveRecvByteBufAllocator readSizes() {
    return new AdaptiveRecvByteBufAllocator(MIN_READ, INITIAL_READ, MAX_READ);
  }
}
