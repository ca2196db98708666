package dev.roadless.optimizer.wire;

import io.grpc.netty.shaded.io.grpc.netty.GrpcHttp2ConnectionHandler;
import io.grpc.netty.shaded.io.grpc.netty.InternalNettyChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.InternalProtocolNegotiator;
import io.grpc.netty.shaded.io.grpc.netty.InternalProtocolNegotiators;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.channel.ChannelHandler;
import io.grpc.netty.shaded.io.netty.handler.codec.ByteToMessageDecoder;
import io.grpc.netty.shaded.io.netty.util.AsciiString;

/**
 * Lets gRPC's HTTP/2 handler keep received bytes where the socket read put them. By default it
 * merges every read into one buffer; while earlier frames are still referenced (a chunk waits to be
 * decoded) that means copying each read into a fresh buffer: one more pass over every byte
 * received. A composite cumulation appends the read buffers instead.
 *
 * <p>Uses gRPC's Internal* negotiator hooks, which only wrap the plaintext negotiator here; if a
 * gRPC upgrade changes them, drop this class and the streams still work (one copy slower).
 */
public final class CompositeCumulation {
  private CompositeCumulation() {}

  /** Plaintext server connections with a composite cumulation. */
  public static NettyServerBuilder plaintextServer(NettyServerBuilder builder) {
    return builder.protocolNegotiator(wrap(InternalProtocolNegotiators.serverPlaintext()));
  }

  /** Plaintext client connections with a composite cumulation. */
  public static NettyChannelBuilder plaintextChannel(NettyChannelBuilder builder) {
    InternalNettyChannelBuilder.setProtocolNegotiatorFactory(
        builder, () -> wrap(InternalProtocolNegotiators.plaintext()));
    return builder;
  }

  private static InternalProtocolNegotiator.ProtocolNegotiator wrap(
      InternalProtocolNegotiator.ProtocolNegotiator plain) {
    return new InternalProtocolNegotiator.ProtocolNegotiator() {
      @Override
      public AsciiString scheme() {
        return plain.scheme();
      }

      @Override
      public ChannelHandler newHandler(GrpcHttp2ConnectionHandler grpcHandler) {
        grpcHandler.setCumulator(ByteToMessageDecoder.COMPOSITE_CUMULATOR);
        return plain.newHandler(grpcHandler);
      }

      @Override
      public void close() {
        plain.close();
      }
    };
  }
}
