package dev.roadless.optimizer.client;

import java.time.Duration;

/**
 * Resilience settings of an {@link OptimizerClient}.
 *
 * @param callDeadline deadline of each attempt of a unary or streaming call
 * @param waitDeadline deadline of a call that waits for other replicas (GetParameters with
 *     min_step)
 * @param maxAttempts attempts per call on UNAVAILABLE (and on an open circuit), first included
 * @param initialBackoff first retry delay; doubles per attempt, with +-50% jitter
 * @param maxBackoff largest retry delay
 * @param chunkBytes payload bytes per streamed chunk (at most 3 MiB)
 * @param sharedMemory whether a {@link ReplicaSession} tries the server's shared-memory segment
 *     (AttachSharedMemory) before sending chunks; it falls back to chunks by itself when the server
 *     is on another host or has shared memory off
 * @param earlyParameters whether a {@link ReplicaSession}'s chunked pushes ask for pipelined steps
 *     (y streamed back block by block while the gradient is still sent; docs/ARCHITECTURE.md,
 *     "Pipelined steps"). Off by default: on two shared cores over loopback it measured slower
 *     (docs/BENCHMARKS.md); the results are bit-identical either way.
 */
public record ClientOptions(
    Duration callDeadline,
    Duration waitDeadline,
    int maxAttempts,
    Duration initialBackoff,
    Duration maxBackoff,
    int chunkBytes,
    boolean sharedMemory,
    boolean earlyParameters) {

  public ClientOptions {
    if (maxAttempts < 1) {
      throw new IllegalArgumentException("maxAttempts must be >= 1");
    }
    if (chunkBytes < 4 || chunkBytes > (3 << 20)) {
      throw new IllegalArgumentException("chunkBytes must be in [4, 3 MiB]");
    }
  }

  /** Options with shared memory on and without pipelined steps. */
  public ClientOptions(
      Duration callDeadline,
      Duration waitDeadline,
      int maxAttempts,
      Duration initialBackoff,
      Duration maxBackoff,
      int chunkBytes) {
    this(
        callDeadline,
        waitDeadline,
        maxAttempts,
        initialBackoff,
        maxBackoff,
        chunkBytes,
        true,
        false);
  }

  /**
   * 30 s per call, 10 min for waits, 60 attempts with 50 ms .. 2 s backoff, 1 MiB chunks, shared
   * memory when the server offers it.
   */
  public static ClientOptions defaults() {
    return new ClientOptions(
        Duration.ofSeconds(30),
        Duration.ofMinutes(10),
        60,
        Duration.ofMillis(50),
        Duration.ofSeconds(2),
        1 << 20,
        true,
        false);
  }

  public ClientOptions withMaxAttempts(int attempts) {
    return new ClientOptions(
        callDeadline,
        waitDeadline,
        attempts,
        initialBackoff,
        maxBackoff,
        chunkBytes,
        sharedMemory,
        earlyParameters);
  }

  public ClientOptions withCallDeadline(Duration deadline) {
    return new ClientOptions(
        deadline,
        waitDeadline,
        maxAttempts,
        initialBackoff,
        maxBackoff,
        chunkBytes,
        sharedMemory,
        earlyParameters);
  }

  public ClientOptions withSharedMemory(boolean on) {
    return new ClientOptions(
        callDeadline,
        waitDeadline,
        maxAttempts,
        initialBackoff,
        maxBackoff,
        chunkBytes,
        on,
        earlyParameters);
  }

  /** With pipelined steps asked for (or not) by every chunked push of a {@link ReplicaSession}. */
  public ClientOptions withEarlyParameters(boolean on) {
    return new ClientOptions(
        callDeadline,
        waitDeadline,
        maxAttempts,
        initialBackoff,
        maxBackoff,
        chunkBytes,
        sharedMemory,
        on);
  }
}
