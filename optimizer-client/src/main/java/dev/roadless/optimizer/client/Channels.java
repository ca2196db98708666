package dev.roadless.optimizer.client;

import dev.roadless.optimizer.wire.CompositeCumulation;
import dev.roadless.optimizer.wire.SocketTuning;
import io.grpc.ChannelCredentials;
import io.grpc.ManagedChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;

/**
 * Channel settings for streaming tensors to the optimizer server. HTTP/2 lets a sender have only
 * one flow-control window of unacknowledged bytes in flight; gRPC's 1 MiB default holds a 40 MB
 * push to one 1 MiB chunk per round trip through the receiver, so the window here is larger. Also
 * keeps received bytes where the socket read put them ({@link CompositeCumulation}), and writes and
 * reads the socket in larger pieces ({@link SocketTuning}).
 */
public final class Channels {
  /** Per-stream and per-connection receive window: room for eight 1 MiB chunks in flight. */
  public static final int FLOW_CONTROL_WINDOW = 8 << 20;

  /** Largest inbound message: a 3 MiB chunk with its framing. */
  public static final int MAX_INBOUND_MESSAGE_BYTES = 8 << 20;

  private Channels() {}

  /**
   * A channel builder to {@code target} ({@code host:port} or a gRPC target URI) with the settings
   * above and {@code credentials}: TLS and a bearer token from {@code
   * dev.roadless.common.security.SecurityConfig#channelCredentials()} or {@code TlsFiles.client}
   * with {@code BearerToken}. TLS connections keep gRPC's own cumulation (one more copy of each
   * received byte than {@link #plaintext}).
   */
  public static ManagedChannelBuilder<?> secure(String target, ChannelCredentials credentials) {
    NettyTuning.apply();
    return SocketTuning.channel(NettyChannelBuilder.forTarget(target, credentials))
        .flowControlWindow(FLOW_CONTROL_WINDOW)
        .maxInboundMessageSize(MAX_INBOUND_MESSAGE_BYTES);
  }

  /**
   * A plaintext channel builder (tests, and local debugging against a server started with
   * plaintext=true) to {@code host:port} with the settings above; also applies {@link NettyTuning}
   * if this is the process's first gRPC channel.
   */
  public static ManagedChannelBuilder<?> plaintext(String host, int port) {
    NettyTuning.apply();
    return CompositeCumulation.plaintextChannel(
            SocketTuning.channel(NettyChannelBuilder.forAddress(host, port).usePlaintext()))
        .flowControlWindow(FLOW_CONTROL_WINDOW)
        .maxInboundMessageSize(MAX_INBOUND_MESSAGE_BYTES);
  }
}
