package dev.roadless.optimizer.core;

/** A parameter group while the optimizer runs: its live hyperparameters and its schedule. */
final class GroupRuntime {
  final GroupSpec spec;
  final Schedule schedule;

  /** Replaced by setHyperparameters; guarded by the optimizer's lock. */
  Hyperparameters hp;

  GroupRuntime(GroupSpec spec, Schedule schedule) {
    this.spec = spec;
    this.schedule = schedule;
    this.hp = spec.hyperparameters();
  }

  OptimizerState.GroupState export() {
    Schedule s = schedule;
    return new OptimizerState.GroupState(
        new GroupSpec(spec.name(), spec.tensorNames(), hp),
        s.k(),
        s.weightSum(),
        s.lrMax(),
        s.lrK(),
        s.ck(),
        s.yBeta());
  }
}
