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
  private final MemoryBudget budget;

  /**
   * @param threads worker threads of each run's fused step kernel
   * @param budget admits every run's memory before it is allocated
   */
  public RunRegistry(int threads, MemoryBudget budget) {
    this.threads = threads;
    this.budget = budget;
  }

  /**
   * The server's memory budget, which every run and every copy of its state is admitted against.
   */
  public MemoryBudget budget() {
    return budget;
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
      MemoryBudget.Grant grant = admit(id, config);
      try {
        Run run = new Run(id, config, newOptimizer(config), null, budget, grant);
        runs.put(id, run);
        return new Created(run, true);
      } catch (RuntimeException e) {
        grant.close();
        throw e;
      }
    }
  }

  /**
   * Creates a run from exported state, or returns the existing run if its spec and state are
   * identical; a run that exists with other state is refused (STATE_CONFLICT).
   */
  public Created importState(String id, RunConfig config, OptimizerState state, byte[] digest) {
    RunIds.check(id);
    synchronized (runs) {
      Run existing = runs.get(id);
      if (existing != null) {
        sameConfigOrThrow(existing, config);
        boolean same;
        try (MemoryBudget.Grant copy =
            budget.admit(RunMemory.stateBytes(config), "a copy of run '" + id + "' to compare")) {
          same = existing.failure() == null && SameState.of(existing.snapshot().state(), state);
        }
        if (!same) {
          throw RoadlessException.of(
                  ErrorReason.ERROR_REASON_STATE_CONFLICT,
                  "run '" + id + "' exists with different state; delete it first to replace it")
              .with("run_id", id)
              .build();
        }
        return new Created(existing, false);
      }
      MemoryBudget.Grant grant = admit(id, config);
      try {
        Run run = new Run(id, config, fromState(config, state), digest, budget, grant);
        runs.put(id, run);
        return new Created(run, true);
      } catch (RuntimeException e) {
        grant.close();
        throw e;
      }
    }
  }

  /**
   * Puts back a run restored from a snapshot, replacing nothing that already lives here.
   *
   * @throws RoadlessException INVALID_STATE for a state that cannot be restored (non-finite, a step
   *     counter out of range, arrays that do not fit the spec); nothing is added
   */
  public Run restore(RunSnapshot snapshot) {
    Run run = fromSnapshot(snapshot);
    Run existing = runs.putIfAbsent(snapshot.id(), run);
    if (existing != null) {
      run.close();
      return existing;
    }
    return run;
  }

  /**
   * Replaces FAILED run {@code failed} by its last finite snapshot; false (and nothing changes)
   * when {@code failed} is no longer the run under its id.
   */
  public boolean rollback(Run failed, RunSnapshot snapshot) {
    Run run = fromSnapshot(snapshot);
    if (!runs.replace(failed.id(), failed, run)) {
      run.close();
      return false;
    }
    failed.cancelWaiters(
        RoadlessException.of(
                ErrorReason.ERROR_REASON_STEP_IN_FUTURE,
                "run '" + failed.id() + "' was rolled back to step " + run.step())
            .with("run_id", failed.id())
            .with("current_step", run.step())
            .build());
    failed.close();
    return true;
  }

  private Run fromSnapshot(RunSnapshot snapshot) {
    MemoryBudget.Grant grant = admit(snapshot.id(), snapshot.config());
    try {
      return new Run(
          snapshot.id(),
          snapshot.config(),
          fromState(snapshot.config(), snapshot.state()),
          snapshot.initialDigest(),
          budget,
          grant);
    } catch (RuntimeException e) {
      grant.close();
      throw e;
    }
  }

  private MemoryBudget.Grant admit(String id, RunConfig config) {
    long bytes;
    try {
      bytes = RunMemory.reservedBytes(config);
    } catch (ArithmeticException e) {
      bytes = Long.MAX_VALUE;
    }
    return budget.admit(bytes, "run '" + id + "'");
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
