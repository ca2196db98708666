package dev.roadless.optimizer.run;

import dev.roadless.common.RunIds;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.core.OptimizerState;
import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.optimizer.v1.RunSpec;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/** The runs living on one server, by id. */
public final class RunRegistry {
  private final ConcurrentMap<String, Run> runs = new ConcurrentHashMap<>();
  private final int threads;

  /**
   * @param threads worker threads of each run's fused step kernel
   */
  public RunRegistry(int threads) {
    this.threads = threads;
  }

  /** Result of {@link #create}: the run and whether this call made it. */
  public record Created(Run run, boolean created) {}

  /** Creates a run, or returns the existing one if its spec is identical. */
  public Created create(String id, RunSpec requested) {
    RunIds.check(id);
    RunSpec spec = SpecMapping.normalize(requested);
    synchronized (runs) {
      Run existing = runs.get(id);
      if (existing != null) {
        return new Created(sameSpecOrThrow(existing, spec), false);
      }
      Run run = new Run(id, spec, SpecMapping.newOptimizer(spec, threads), null);
      runs.put(id, run);
      return new Created(run, true);
    }
  }

  /** Creates a run from exported state, or returns the existing identical run. */
  public Created importState(String id, RunSpec requested, OptimizerState state, byte[] digest) {
    RunIds.check(id);
    RunSpec spec = SpecMapping.normalize(requested);
    ScheduleFreeOptimizer optimizer = SpecMapping.fromState(spec, state, threads);
    synchronized (runs) {
      Run existing = runs.get(id);
      if (existing != null) {
        return new Created(sameSpecOrThrow(existing, spec), false);
      }
      Run run = new Run(id, spec, optimizer, digest);
      runs.put(id, run);
      return new Created(run, true);
    }
  }

  /** Puts back a run restored from a snapshot, replacing nothing that already lives here. */
  public void restore(Run.RunSnapshot snapshot) {
    Run run =
        new Run(
            snapshot.id(),
            snapshot.spec(),
            SpecMapping.fromState(snapshot.spec(), snapshot.state(), threads),
            snapshot.initialDigest());
    runs.putIfAbsent(snapshot.id(), run);
  }

  public Run get(String id) {
    Run run = runs.get(id);
    if (run == null) {
      throw RoadlessException.of(ErrorReason.ERROR_REASON_RUN_NOT_FOUND, "no run '" + id + "'")
          .with("run_id", id)
          .build();
    }
    return run;
  }

  /** Removes a run; false if it did not exist. */
  public boolean delete(String id) {
    Run run = runs.remove(id);
    if (run == null) {
      return false;
    }
    run.cancelWaiters(
        RoadlessException.of(ErrorReason.ERROR_REASON_RUN_NOT_FOUND, "run '" + id + "' was deleted")
            .with("run_id", id)
            .build());
    run.close();
    return true;
  }

  public List<Run> all() {
    return runs.values().stream().sorted((a, b) -> a.id().compareTo(b.id())).toList();
  }

  private static Run sameSpecOrThrow(Run existing, RunSpec spec) {
    if (!existing.spec().equals(spec)) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_RUN_SPEC_CONFLICT,
              "run '" + existing.id() + "' exists with a different spec")
          .with("run_id", existing.id())
          .build();
    }
    return existing;
  }
}
