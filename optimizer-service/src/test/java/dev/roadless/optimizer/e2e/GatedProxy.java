package dev.roadless.optimizer.e2e;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A loopback TCP proxy in front of the server, for one client's connection: it counts the bytes it
 * forwards each way, can stop the client's bytes at a mark (the server then has exactly what came
 * before it), and can hold new connections unanswered until it is opened again (the client's calls
 * wait as for a server that is still starting). The test's view of "how far the push got" without
 * any hook in the server.
 */
final class GatedProxy implements AutoCloseable {
  private final ServerSocket listener;
  private final int target;
  private final AtomicLong up = new AtomicLong();
  private final AtomicLong down = new AtomicLong();
  private final List<Socket> sockets = new CopyOnWriteArrayList<>();
  private volatile long upLimit = Long.MAX_VALUE;
  private volatile boolean open = true;
  private volatile boolean closed;

  GatedProxy(int target) throws IOException {
    this.target = target;
    this.listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    daemon("proxy-accept", this::acceptLoop).start();
  }

  int port() {
    return listener.getLocalPort();
  }

  /** Bytes forwarded from the client to the server so far. */
  long up() {
    return up.get();
  }

  /** Bytes forwarded from the server to the client so far. */
  long down() {
    return down.get();
  }

  /** From now on, forwards at most {@code bytes} more of the client's bytes. */
  void stopUpAfter(long bytes) {
    synchronized (this) {
      upLimit = up.get() + bytes;
      notifyAll();
    }
  }

  /** Waits until the client's bytes reached the mark of {@link #stopUpAfter}. */
  void awaitUpStopped(long timeoutMillis) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
    synchronized (this) {
      while (up.get() < upLimit) {
        long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
        if (left <= 0) {
          throw new IllegalStateException("the client sent " + up.get() + " of " + upLimit);
        }
        wait(left);
      }
    }
  }

  /**
   * New connections wait unanswered (the client sees a server that is slow to start), and no bytes
   * are held back any more.
   */
  void hold() {
    synchronized (this) {
      open = false;
      upLimit = Long.MAX_VALUE;
      notifyAll();
    }
  }

  /** Waiting and new connections go through to the server. */
  void release() {
    synchronized (this) {
      open = true;
      notifyAll();
    }
  }

  @Override
  public void close() throws IOException {
    closed = true;
    listener.close();
    for (Socket s : sockets) {
      s.close();
    }
    synchronized (this) {
      notifyAll();
    }
  }

  private void acceptLoop() {
    while (!closed) {
      Socket client;
      try {
        client = listener.accept();
      } catch (IOException e) {
        return; // closed
      }
      sockets.add(client);
      daemon("proxy-connect", () -> connect(client)).start();
    }
  }

  private void connect(Socket client) {
    try {
      synchronized (this) {
        while (!open && !closed) {
          wait();
        }
      }
      Socket server = new Socket(InetAddress.getLoopbackAddress(), target);
      sockets.add(server);
      server.setTcpNoDelay(true);
      client.setTcpNoDelay(true);
      daemon("proxy-up", () -> pump(client, server, true)).start();
      pump(server, client, false);
    } catch (IOException | InterruptedException e) {
      closeQuietly(client);
    }
  }

  /** Copies {@code from} to {@code to} until either side ends, then closes both. */
  private void pump(Socket from, Socket to, boolean upward) {
    byte[] buffer = new byte[64 << 10];
    try (InputStream in = from.getInputStream();
        OutputStream out = to.getOutputStream()) {
      int n;
      while ((n = in.read(buffer)) > 0) {
        int at = 0;
        while (at < n) {
          int allowed = upward ? allowedUp(n - at, from) : n - at;
          if (allowed < 0) {
            return;
          }
          out.write(buffer, at, allowed);
          at += allowed;
          if (upward) {
            synchronized (this) {
              up.addAndGet(allowed);
              notifyAll();
            }
          } else {
            down.addAndGet(allowed);
          }
        }
        out.flush();
      }
    } catch (IOException | InterruptedException e) {
      // One side went away (a killed server resets its sockets): close the other.
    } finally {
      closeQuietly(from);
      closeQuietly(to);
    }
  }

  /** How many of {@code want} bytes may go up now, waiting at the mark; -1 once closed. */
  private synchronized int allowedUp(int want, Socket from) throws InterruptedException {
    while (up.get() >= upLimit) {
      if (closed || from.isClosed()) {
        return -1;
      }
      wait(50); // woken by stopUpAfter, hold or close; the timeout notices a closed socket
    }
    return (int) Math.min(want, upLimit - up.get());
  }

  private static void closeQuietly(Socket s) {
    try {
      s.close();
    } catch (IOException ignored) {
      // already closed
    }
  }

  private static Thread daemon(String name, Runnable body) {
    Thread t = new Thread(body, name);
    t.setDaemon(true);
    return t;
  }
}
