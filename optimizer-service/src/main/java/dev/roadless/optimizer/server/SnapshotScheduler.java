package dev.roadless.optimizer.server;

import dev.roadless.optimizer.run.Run;
import dev.roadless.optimizer.run.RunRegistry;
import dev.roadless.optimizer.run.RunSnapshot;
import dev.roadless.optimizer.store.SnapshotStore;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Decides when runs are snapshotted: every N steps, every T seconds if a run changed, after an
 * import, after every hyperparameter change (before it is acknowledged), and once more at shutdown.
 * Writes happen on one background thread so a step's answer never waits for the disk. Without a
 * store it does nothing.
 */
final class SnapshotScheduler implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(SnapshotScheduler.class.getName());

  private final SnapshotStore store;
  private final RunRegistry runs;
  private final Metrics metrics;
  private final long everySteps;
  private final long everyNanos;
  private final Map<String, Long> savedStep = new ConcurrentHashMap<>();
  private final Map<String, Long> savedAt = new ConcurrentHashMap<>();
  private final Map<String, Boolean> queued = new ConcurrentHashMap<>();
  private final ScheduledExecutorService writer;
  private volatile java.util.function.Consumer<Boolean> health = ok -> {};

  SnapshotScheduler(
      SnapshotStore store, RunRegistry runs, Metrics metrics, long everySteps, long everySeconds) {
    this.store = store;
    this.runs = runs;
    this.metrics = metrics;
    this.everySteps = everySteps;
    this.everyNanos = TimeUnit.SECONDS.toNanos(everySeconds);
    this.writer =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "roadless-snapshots");
              t.setDaemon(true);
              return t;
            });
    if (store != null && everySeconds > 0) {
      writer.scheduleWithFixedDelay(this::timeTick, 1, 1, TimeUnit.SECONDS);
    }
  }

  /** Remembers that a restored run is on disk at its current step. */
  void restored(Run run) {
    savedStep.put(run.id(), run.step());
    savedAt.put(run.id(), System.nanoTime());
    run.snapshotTaken(run.step(), null);
  }

  /** The run's last snapshot on disk, or null when there is none (or no store). */
  RunSnapshot lastSnapshot(String runId) throws IOException {
    return store == null ? null : store.read(runId, StateStreams::restore);
  }

  /** Told after every snapshot attempt whether every run's latest one succeeded. */
  void onHealth(java.util.function.Consumer<Boolean> health) {
    this.health = health;
  }

  /** True while every run's latest snapshot attempt succeeded. */
  boolean healthy() {
    return runs.all().stream().allMatch(r -> r.snapshotError().isEmpty());
  }

  void stepApplied(Run run) {
    if (store == null || everySteps == 0) {
      return;
    }
    long since = run.step() - savedStep.getOrDefault(run.id(), 0L);
    if (since >= everySteps) {
      requestSnapshot(run);
    }
  }

  void requestSnapshot(Run run) {
    if (store == null || queued.putIfAbsent(run.id(), Boolean.TRUE) != null) {
      return;
    }
    writer.execute(
        () -> {
          queued.remove(run.id());
          save(run);
        });
  }

  /**
   * Writes the run's snapshot now and waits for it, behind any write already queued: a
   * hyperparameter change is on disk before it is acknowledged, so a restart (kill -9 included)
   * never brings a run back with the values it had before. False if the write failed (the run's
   * {@code snapshot_error} says why); true without a store.
   */
  boolean snapshotNow(Run run) {
    if (store == null) {
      return true;
    }
    try {
      return writer.submit(() -> save(run)).get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    } catch (java.util.concurrent.ExecutionException e) {
      return false;
    }
  }

  void forget(String runId) {
    savedStep.remove(runId);
    savedAt.remove(runId);
    if (store != null) {
      writer.execute(
          () -> {
            try {
              store.delete(runId);
            } catch (IOException e) {
              LOG.log(Level.WARNING, "could not delete the snapshot of run " + runId, e);
            }
          });
    }
  }

  /**
   * Snapshots every run that changed since its last snapshot, and waits for the writes.
   *
   * @return the ids of the runs whose final snapshot failed (empty without a store)
   */
  List<String> snapshotAllAndWait() {
    if (store == null) {
      return List.of();
    }
    try {
      return writer
          .submit(
              () -> {
                List<String> failed = new ArrayList<>();
                for (Run run : runs.all()) {
                  if (run.initialized() && run.step() != savedStep.getOrDefault(run.id(), -1L)) {
                    if (!save(run)) {
                      failed.add(run.id());
                    }
                  }
                }
                return failed;
              })
          .get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return List.of("(interrupted)");
    } catch (java.util.concurrent.ExecutionException e) {
      LOG.log(Level.SEVERE, "final snapshots failed", e.getCause());
      return List.of("(all)");
    }
  }

  private void timeTick() {
    long now = System.nanoTime();
    for (Run run : runs.all()) {
      Long at = savedAt.get(run.id());
      boolean changed = run.initialized() && run.step() != savedStep.getOrDefault(run.id(), -1L);
      if (changed && (at == null || now - at >= everyNanos)) {
        save(run);
      }
    }
  }

  /** Writes one run's snapshot; false if that failed. A FAILED run keeps its last finite one. */
  private boolean save(Run run) {
    if (!run.initialized() || run.failure() != null) {
      return true;
    }
    try (var copy =
        runs.budget()
            .admit(
                dev.roadless.optimizer.run.RunMemory.stateBytes(run.config()),
                "a snapshot of run '" + run.id() + "'")) {
      RunSnapshot snapshot = run.snapshot();
      long t0 = System.nanoTime();
      store.write(snapshot.id(), StateStreams.snapshot(snapshot));
      savedStep.put(run.id(), snapshot.state().stepCount());
      savedAt.put(run.id(), System.nanoTime());
      metrics.snapshot(true);
      run.snapshotTaken(snapshot.state().stepCount(), null);
      health.accept(healthy());
      LOG.fine(
          () ->
              "snapshot run="
                  + run.id()
                  + " step="
                  + snapshot.state().stepCount()
                  + " ms="
                  + (System.nanoTime() - t0) / 1_000_000);
      return true;
    } catch (IOException | RuntimeException e) {
      metrics.snapshot(false);
      run.snapshotTaken(-1, String.valueOf(e.getMessage()));
      health.accept(false);
      LOG.log(Level.SEVERE, "snapshot of run " + run.id() + " failed", e);
      return false;
    }
  }

  @Override
  public void close() {
    writer.shutdown();
  }
}
