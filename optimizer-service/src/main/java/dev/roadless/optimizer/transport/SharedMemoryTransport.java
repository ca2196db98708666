package dev.roadless.optimizer.transport;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.run.MemoryBudget;
import dev.roadless.optimizer.run.Run;
import dev.roadless.optimizer.shm.SharedSegment;
import dev.roadless.proto.common.v1.ErrorReason;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.logging.Logger;

/**
 * The shared-memory push transport: same-host replicas push through a segment of their own instead
 * of gRPC chunks ({@link SegmentPush}). The server's segments, one per (run, replica), in a
 * directory of this process's own ({@code <base>/roadless-optimizer-<pid>}). On start it removes
 * the directories of processes that no longer run (a server killed with SIGKILL leaves its files
 * behind on tmpfs), and on close its own, never following a symbolic link ({@link
 * SegmentDirectories}). Thread-safe.
 */
public final class SharedMemoryTransport implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(SharedMemoryTransport.class.getName());

  private final Path dir;
  private final MemoryBudget budget;
  private final Map<String, Entry> segments = new HashMap<>();
  private long created;
  private byte[] probe;

  private record Entry(Run run, int replica, SharedSegment segment, MemoryBudget.Grant grant) {}

  /**
   * @param base the shared-memory directory ({@code /dev/shm} on Linux), or null to turn the
   *     feature off
   * @param budget every segment is admitted against it before its file is created
   */
  public SharedMemoryTransport(Path base, MemoryBudget budget) {
    this.dir =
        base == null
            ? null
            : base.resolve(SegmentDirectories.PREFIX + ProcessHandle.current().pid());
    this.budget = budget;
    if (dir != null) {
      SegmentDirectories.sweep(base);
    }
  }

  /** Without a limit (tests and tools). */
  public SharedMemoryTransport(Path base) {
    this(base, MemoryBudget.unlimited());
  }

  /**
   * The shared-memory budget: {@code bytes}, or when that is 0 half of the file system that holds
   * {@code base} (tmpfs counts against the container's memory).
   */
  public static MemoryBudget budget(Path base, long bytes) {
    if (bytes > 0) {
      return new MemoryBudget("shared memory", bytes);
    }
    try {
      if (base != null && Files.isDirectory(base)) {
        return new MemoryBudget(
            "shared memory", Math.max(1, Files.getFileStore(base).getTotalSpace() / 2));
      }
    } catch (IOException e) {
      LOG.warning("cannot size " + base + ": " + e.getMessage());
    }
    return MemoryBudget.unlimited();
  }

  /**
   * The probe file, created on first use: 32 random bytes that only a process that can read this
   * server's shared-memory directory can know.
   */
  public synchronized Path probe() {
    requireEnabled();
    Path file = dir.resolve("probe");
    if (probe == null) {
      byte[] bytes = new byte[32];
      new java.security.SecureRandom().nextBytes(bytes);
      try {
        SegmentDirectories.createOwn(dir);
        Path staged = dir.resolve("probe.tmp");
        Files.deleteIfExists(staged);
        Files.createFile(staged, SharedSegment.ownerOnly(false));
        Files.write(staged, bytes);
        Files.move(staged, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
      } catch (IOException e) {
        throw unavailable(e);
      }
      probe = bytes;
    }
    return file;
  }

  /**
   * AttachSharedMemory: the replica's segment (created on first use) once the caller proved it can
   * read this server's shared-memory directory ({@code proof} is the probe file's content); until
   * then null, and the caller gets the {@link #probe}.
   */
  public SharedSegment attach(Run run, int replica, byte[] proof) {
    run.checkReplica(replica);
    probe(); // also refuses when shared memory is off
    return proves(proof) ? attach(run, replica) : null;
  }

  /** A push naming a segment by its token, or SHARED_MEMORY_UNKNOWN. */
  public SegmentPush open(Run run, int replica, byte[] token) {
    return new SegmentPush(get(run, replica, token), run, replica);
  }

  /** True when {@code proof} is the probe file's content. */
  private synchronized boolean proves(byte[] proof) {
    return probe != null && java.security.MessageDigest.isEqual(probe, proof);
  }

  private void requireEnabled() {
    if (dir == null) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_SHARED_MEMORY_UNAVAILABLE,
              "this server has no shared-memory directory (shared-memory-dir); send chunks")
          .build();
    }
  }

  private RoadlessException unavailable(IOException e) {
    return RoadlessException.of(
            ErrorReason.ERROR_REASON_SHARED_MEMORY_UNAVAILABLE,
            "cannot create a shared-memory file in " + dir + ": " + e.getMessage())
        .build();
  }

  /** The replica's segment, created on first use. */
  private synchronized SharedSegment attach(Run run, int replica) {
    requireEnabled();
    run.checkReplica(replica);
    String key = run.id() + "/" + replica;
    Entry e = segments.get(key);
    if (e != null && e.run == run) {
      return e.segment;
    }
    if (e != null) {
      remove(key, e); // the run was deleted and created again
    }
    Path file = dir.resolve(run.id() + "." + replica + "." + (++created) + ".seg");
    long total = 0;
    for (long n : run.tensorSizes()) {
      total += n;
    }
    MemoryBudget.Grant grant =
        budget.admit(
            SharedSegment.sizeBytes(total),
            "a shared-memory segment for run '" + run.id() + "' replica " + replica);
    try {
      SegmentDirectories.createOwn(dir);
      SharedSegment segment;
      try {
        segment = SharedSegment.create(file, run.tensorSizes());
      } catch (IOException failed) {
        delete(file); // for example ENOSPC half-way: leave no partial file behind
        throw failed;
      }
      segments.put(key, new Entry(run, replica, segment, grant));
      LOG.info(
          () ->
              "shared-memory segment run_id="
                  + run.id()
                  + " replica="
                  + replica
                  + " bytes="
                  + SharedSegment.sizeBytes(segment.totalElements())
                  + " path="
                  + file);
      return segment;
    } catch (IOException | RuntimeException ex) {
      grant.close();
      throw ex instanceof IOException io ? unavailable(io) : (RuntimeException) ex;
    }
  }

  /** The segment a push names, or SHARED_MEMORY_UNKNOWN. */
  private synchronized SharedSegment get(Run run, int replica, byte[] token) {
    Entry e = segments.get(run.id() + "/" + replica);
    if (e == null || e.run != run || !e.segment.hasToken(token)) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_SHARED_MEMORY_UNKNOWN,
              "no shared-memory segment with this token for run '"
                  + run.id()
                  + "' replica "
                  + replica
                  + "; call AttachSharedMemory again")
          .with("run_id", run.id())
          .with("replica", replica)
          .build();
    }
    return e.segment;
  }

  /** Drops (and deletes) every segment of a run. */
  public synchronized void forget(String runId) {
    Iterator<Map.Entry<String, Entry>> it = segments.entrySet().iterator();
    while (it.hasNext()) {
      Map.Entry<String, Entry> e = it.next();
      if (e.getValue().run.id().equals(runId)) {
        drop(e.getValue());
        it.remove();
      }
    }
  }

  /** Deletes every segment and this process's directory. */
  @Override
  public synchronized void close() {
    segments.values().forEach(SharedMemoryTransport::drop);
    segments.clear();
    if (dir != null) {
      SegmentDirectories.remove(dir.getParent(), dir.getFileName());
    }
  }

  private void remove(String key, Entry e) {
    segments.remove(key);
    drop(e);
  }

  /**
   * Deletes a segment's file, gives its bytes back, and unmaps it as soon as no push uses it (not
   * at some later garbage collection).
   */
  private static void drop(Entry e) {
    delete(e.segment.path());
    e.segment.release();
    e.grant.close();
  }

  private static void delete(Path p) {
    try {
      Files.deleteIfExists(p);
    } catch (IOException e) {
      LOG.warning("cannot delete " + p + ": " + e.getMessage());
    }
  }
}
