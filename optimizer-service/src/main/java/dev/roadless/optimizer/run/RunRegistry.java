package dev.roadless.optimizer.run;

import dev.roadless.common.RunIds;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.core.OptimizerState;
import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.proto.common.v1.ErrorReason;
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

  /** Creates a run, or returns the existing one if its configuration is identical. */
  public Created create(String id, RunConfig config) {
    RunIds.check(id);
    synchronized (runs) {
      Run existing = runs.get(id);
      if (existing != null) {
        return new Created(sameConfigOrThrow(existing, config), false);
      }
      Run run = new Run(id, config, newOptimizer(config), null);
      runs.put(id, run);
      return new Created(run, true);
    }
  }

  /** Creates a run from exported state, or returns the existing identical run. */
  public Created importState(String id, RunConfig config, OptimizerState state, byte[] digest) {
    RunIds.check(id);
    ScheduleFreeOptimizer optimizer = fromState(config, state);
    synchronized (runs) {
      Run existing = runs.get(id);
      if (existing != null) {
        optimizer.close();
        return new Created(sameConfigOrThrow(existing, config), false);
      }
      Run run = new Run(id, config, optimizer, digest);
      runs.put(id, run);
      return new Created(run, true);
    }
  }

  /** Puts back a run restored from a snapshot, replacing nothing that already lives here. */
  public void restore(RunSnapshot snapshot) {
    Run run =
        new Run(
            snapshot.id(),
            snapshot.config(),
            fromState(snapshot.config(), snapshot.state()),
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

  private ScheduleFreeOptimizer newOptimizer(RunConfig config) {
    try {
      return new ScheduleFreeOptimizer(
          config.variant(), config.tensors(), config.groups(), threads);
    } catch (IllegalArgumentException e) {
      throw RoadlessException.of(ErrorReason.ERROR_REASON_INVALID_RUN_SPEC, e.getMessage())
          .with("field", "spec")
          .build();
    }
  }

  /** An optimizer restored from state, after checking that the state fits the configuration. */
  private ScheduleFreeOptimizer fromState(RunConfig config, OptimizerState state) {
    if (state.variant() != config.variant() || !state.tensors().equals(config.tensors())) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_INVALID_STATE,
              "the state's variant or tensors do not match the spec")
          .with("field", "spec")
          .build();
    }
    try {
      return ScheduleFreeOptimizer.fromState(state, threads);
    } catch (IllegalArgumentException e) {
      throw RoadlessException.of(ErrorReason.ERROR_REASON_INVALID_STATE, e.getMessage()).build();
    }
  }

  private static Run sameConfigOrThrow(Run existing, RunConfig config) {
    if (!existing.config().equals(config)) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_RUN_SPEC_CONFLICT,
              "run '" + existing.id() + "' exists with a different spec")
          .with("run_id", existing.id())
          .build();
    }
    return existing;
  }
}
