package dev.roadless.optimizer.shard;

import com.google.protobuf.Descriptors.FieldDescriptor;
import dev.roadless.common.error.Errors;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.optimizer.v1.GroupStatus;
import dev.roadless.proto.optimizer.v1.Hyperparameters;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.RunStatus;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A hyperparameter change of a sharded run: the same change, on every shard that holds a part of
 * the group, for the same step. Each shard is asked with {@code expected_step}, so no shard applies
 * it at another step; a shard that refuses (STEP_MISMATCH) but already holds every changed value
 * (an earlier attempt reached it) counts as changed, so a retry with the same step converges.
 */
final class ShardedHyperparameters {
  private ShardedHyperparameters() {}

  /** How one shard answered. */
  record Outcome(int shard, boolean changed, long step, GroupStatus group) {}

  /**
   * Applies {@code change} to group {@code group} on every shard holding it, at {@code
   * expectedStep}; returns every such shard's outcome in shard order.
   *
   * @throws StatusRuntimeException NOT_FOUND (GROUP_NOT_FOUND) if no shard holds the group; any
   *     shard's own failure as it was (a retry with the same step is safe)
   */
  static List<Outcome> apply(
      ShardedClient client, String runId, String group, Hyperparameters change, long step) {
    List<Integer> holders = holders(client, runId, group);
    return client
        .onEveryShard(
            s -> holders.contains(s) ? one(client.shard(s), s, runId, group, change, step) : null)
        .stream()
        .filter(o -> o != null)
        .toList();
  }

  /**
   * The change at {@code expectedStep} on every shard holding the group, or ABORTED (STEP_MISMATCH)
   * that says which shards changed and which refused at which steps.
   */
  static List<GroupStatus> update(
      ShardedClient client, String runId, String group, Hyperparameters change, long step) {
    List<Outcome> outcomes = apply(client, runId, group, change, step);
    List<Outcome> refused = outcomes.stream().filter(o -> !o.changed()).toList();
    if (!refused.isEmpty()) {
      throw refusal(runId, group, step, outcomes);
    }
    return outcomes.stream().map(Outcome::group).toList();
  }

  /** The change at the step every shard holding the group is at; ABORTED if they differ. */
  static List<GroupStatus> update(
      ShardedClient client, String runId, String group, Hyperparameters change) {
    List<Integer> holders = holders(client, runId, group);
    List<RunStatus> statuses = client.statuses(runId);
    List<Long> steps = holders.stream().map(s -> statuses.get(s).getStep()).toList();
    if (steps.stream().distinct().count() > 1) {
      throw Errors.toStatus(
          RoadlessException.of(
                  ErrorReason.ERROR_REASON_STEP_MISMATCH,
                  "run '"
                      + runId
                      + "' shards "
                      + holders
                      + " holding group '"
                      + group
                      + "' are at steps "
                      + steps
                      + "; a change now would apply at different steps (retry between steps)")
              .with("run_id", runId)
              .with("group", group)
              .build());
    }
    return update(client, runId, group, change, steps.get(0));
  }

  static StatusRuntimeException refusal(
      String runId, String group, long step, List<Outcome> outcomes) {
    List<Integer> changed = new ArrayList<>();
    List<String> refused = new ArrayList<>();
    for (Outcome o : outcomes) {
      if (o.changed()) {
        changed.add(o.shard());
      } else {
        refused.add(o.shard() + "@" + o.step());
      }
    }
    String torn =
        changed.isEmpty()
            ? "no shard changed"
            : "shards " + changed + " changed; retry with the same step while every shard is at it";
    return Errors.toStatus(
        RoadlessException.of(
                ErrorReason.ERROR_REASON_STEP_MISMATCH,
                "group '"
                    + group
                    + "' of run '"
                    + runId
                    + "' not changed at step "
                    + step
                    + " on shards "
                    + refused
                    + " (shard@its step); "
                    + torn)
            .with("run_id", runId)
            .with("group", group)
            .with("step", step)
            .with("changed_shards", changed.toString())
            .with("refused_shards", refused.toString())
            .build());
  }

  /** The shards whose spec holds the group, in shard order. */
  static List<Integer> holders(ShardedClient client, String runId, String group) {
    List<Integer> holders = new ArrayList<>();
    for (int s = 0; s < client.plan().size(); s++) {
      for (ParameterGroup g : client.plan().shard(s).spec().getParameterGroupsList()) {
        if (g.getName().equals(group)) {
          holders.add(s);
        }
      }
    }
    if (holders.isEmpty()) {
      throw Errors.toStatus(
          RoadlessException.of(
                  ErrorReason.ERROR_REASON_GROUP_NOT_FOUND,
                  "run '" + runId + "' has no group '" + group + "'")
              .with("run_id", runId)
              .with("group", group)
              .build());
    }
    return holders;
  }

  private static Outcome one(
      OptimizerClient shard, int s, String runId, String group, Hyperparameters change, long step) {
    try {
      return new Outcome(s, true, step, shard.updateHyperparameters(runId, group, change, step));
    } catch (StatusRuntimeException e) {
      if (!"STEP_MISMATCH".equals(OptimizerClient.reason(e))) {
        throw e;
      }
      RunStatus status = shard.status(runId);
      GroupStatus held =
          status.getGroupsList().stream()
              .filter(g -> g.getName().equals(group))
              .findFirst()
              .orElseThrow(() -> e);
      return new Outcome(s, holds(held.getHyperparameters(), change), status.getStep(), held);
    }
  }

  /** Whether every field set in {@code change} has that value in {@code live}. */
  static boolean holds(Hyperparameters live, Hyperparameters change) {
    for (Map.Entry<FieldDescriptor, Object> f : change.getAllFields().entrySet()) {
      if (!live.hasField(f.getKey()) || !live.getField(f.getKey()).equals(f.getValue())) {
        return false;
      }
    }
    return true;
  }
}
