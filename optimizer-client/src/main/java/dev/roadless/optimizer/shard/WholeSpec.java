package dev.roadless.optimizer.shard;

import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.RunSpec;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The whole spec of a sharded run, put back together from its shards' specs (as {@code
 * GetRunStatus} or a state header shows them): tensors in their original order with their shapes,
 * and every group with the shards' hyperparameters. Groups come back ordered by their first tensor
 * and list their tensors in spec order: the spec itself when it was written that way (as the
 * trainers and the Python client write it), an equivalent spec otherwise.
 */
final class WholeSpec {
  private WholeSpec() {}

  static ShardPlan recover(List<RunSpec> shardSpecs) {
    if (shardSpecs.isEmpty()) {
      throw new IllegalArgumentException("no shards");
    }
    if (shardSpecs.size() == 1) {
      return ShardPlan.of(shardSpecs.get(0), 1);
    }
    Map<Integer, TensorDescriptor> tensors = new TreeMap<>();
    Map<String, ParameterGroup> groups = new LinkedHashMap<>();
    Map<String, TreeSet<Integer>> members = new LinkedHashMap<>();
    RunSpec first = shardSpecs.get(0);
    for (RunSpec s : shardSpecs) {
      if (s.getVariant() != first.getVariant()
          || s.getReplicas() != first.getReplicas()
          || s.getMode() != first.getMode()) {
        throw new IllegalArgumentException("the shards are runs of different kinds");
      }
      Map<String, Integer> index = new LinkedHashMap<>();
      for (TensorDescriptor d : s.getTensorsList()) {
        ShardNames.Parsed p = ShardNames.parse(d);
        index.put(d.getName(), p.index());
        TensorDescriptor.Builder whole = d.toBuilder().setName(p.name()).clearShape();
        for (long dim : p.shape()) {
          whole.addShape(dim);
        }
        TensorDescriptor before = tensors.putIfAbsent(p.index(), whole.build());
        if (before != null && !before.equals(whole.build())) {
          throw new IllegalArgumentException("tensor " + p.index() + " differs between shards");
        }
      }
      for (ParameterGroup g : s.getParameterGroupsList()) {
        ParameterGroup bare = g.toBuilder().clearTensorNames().build();
        ParameterGroup before = groups.putIfAbsent(g.getName(), bare);
        if (before != null && !before.equals(bare)) {
          throw new IllegalArgumentException("group " + g.getName() + " differs between shards");
        }
        TreeSet<Integer> in = members.computeIfAbsent(g.getName(), n -> new TreeSet<>());
        for (String t : g.getTensorNamesList()) {
          in.add(index.get(t));
        }
      }
    }
    int n = tensors.size();
    if (n == 0 || !tensors.containsKey(0) || !tensors.containsKey(n - 1)) {
      throw new IllegalArgumentException("the shards do not hold every tensor of the run");
    }
    RunSpec.Builder whole = first.toBuilder().clearTensors().clearParameterGroups();
    tensors.values().forEach(whole::addTensors);
    List<String> groupOrder = new ArrayList<>(groups.keySet());
    groupOrder.sort(Comparator.comparing(g -> members.get(g).first()));
    for (String g : groupOrder) {
      ParameterGroup.Builder b = groups.get(g).toBuilder();
      members.get(g).forEach(t -> b.addTensorNames(tensors.get(t).getName()));
      whole.addParameterGroups(b);
    }
    ShardPlan plan = ShardPlan.of(whole.build(), shardSpecs.size());
    for (int s = 0; s < shardSpecs.size(); s++) {
      if (!plan.shard(s).spec().getTensorsList().equals(shardSpecs.get(s).getTensorsList())) {
        throw new IllegalArgumentException(
            "shard " + s + " does not hold what the plan of " + shardSpecs.size() + " gives it");
      }
    }
    return plan;
  }
}
