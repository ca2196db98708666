package dev.roadless.optimizer.bench;

import java.io.EOFException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The floor of the tcp transport on this machine: a child process echoes {@code bytes} back for
 * every {@code bytes} it receives over one loopback TCP connection (direct buffers, TCP_NODELAY):
 * one round trip's bytes, sequential, without gRPC and without a step.
 */
final class RawTcpFloor {
  private RawTcpFloor() {}

  /** The floor's median ms, and its line. */
  record Floor(double medianMs, String line) {}

  static Floor measure(long bytes, int warmup, int steps) throws Exception {
    try (ServerSocketChannel listen = ServerSocketChannel.open()) {
      listen.bind(new InetSocketAddress("127.0.0.1", 0));
      int port = ((InetSocketAddress) listen.getLocalAddress()).getPort();
      Process echo =
          ChildJvm.java(
              List.of("-Xmx256m"),
              ServingBench.class.getName(),
              "echo",
              Integer.toString(port),
              Long.toString(bytes));
      try (SocketChannel s = listen.accept()) {
        s.setOption(StandardSocketOptions.TCP_NODELAY, true);
        ByteBuffer buf = ByteBuffer.allocateDirect(Math.toIntExact(bytes));
        long[] nanos = new long[steps];
        for (int i = 0; i < warmup + steps; i++) {
          long t0 = System.nanoTime();
          buf.clear();
          while (buf.hasRemaining()) {
            s.write(buf);
          }
          buf.clear();
          while (buf.hasRemaining()) {
            if (s.read(buf) < 0) {
              throw new EOFException("echo process ended");
            }
          }
          if (i >= warmup) {
            nanos[i - warmup] = System.nanoTime() - t0;
          }
        }
        Arrays.sort(nanos);
        return new Floor(
            nanos[steps / 2] / 1e6,
            String.format(
                "%.0f MB there and back: median %.1f ms, p90 %.1f ms, min %.1f ms over %d repeats",
                bytes / 1e6,
                nanos[steps / 2] / 1e6,
                nanos[steps * 9 / 10] / 1e6,
                nanos[0] / 1e6,
                steps));
      } finally {
        echo.destroy();
        echo.waitFor(10, TimeUnit.SECONDS);
      }
    }
  }

  /** The echo process: {@code echo PORT BYTES}; reads the bytes, writes them back, until EOF. */
  static void echo(String[] args) throws Exception {
    int port = Integer.parseInt(args[1]);
    int bytes = Integer.parseInt(args[2]);
    try (SocketChannel s = SocketChannel.open(new InetSocketAddress("127.0.0.1", port))) {
      s.setOption(StandardSocketOptions.TCP_NODELAY, true);
      ByteBuffer buf = ByteBuffer.allocateDirect(bytes);
      while (true) {
        buf.clear();
        while (buf.hasRemaining()) {
          if (s.read(buf) < 0) {
            return;
          }
        }
        buf.flip();
        while (buf.hasRemaining()) {
          s.write(buf);
        }
      }
    }
  }
}
