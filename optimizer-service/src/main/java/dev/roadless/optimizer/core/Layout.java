package dev.roadless.optimizer.core;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The fixed shape of an optimizer: its tensors, which group owns each, and the chunks the kernels
 * run over. Validated once on construction; immutable.
 */
final class Layout {
  /** Elements per chunk: large enough to amortise the hand-out, small enough to balance. */
  static final int CHUNK = 1 << 16;

  final List<TensorSpec> tensors;
  final int[] numel;
  final int[] groupOfTensor;
  final List<String> groupNames;
  final int[][] groupTensors;
  final int[] chunkTensor;
  final int[] chunkFrom;
  final int[] chunkTo;
  private final Map<String, Integer> tensorIndex = new HashMap<>();
  private final Map<String, Integer> groupIndex = new HashMap<>();

  Layout(List<TensorSpec> tensors, List<GroupSpec> groups) {
    if (tensors == null || tensors.isEmpty()) {
      throw new IllegalArgumentException("an optimizer needs at least one tensor");
    }
    if (groups == null || groups.isEmpty()) {
      throw new IllegalArgumentException("an optimizer needs at least one group");
    }
    this.tensors = List.copyOf(tensors);
    numel = new int[tensors.size()];
    for (int t = 0; t < tensors.size(); t++) {
      TensorSpec s = tensors.get(t);
      if (tensorIndex.putIfAbsent(s.name(), t) != null) {
        throw new IllegalArgumentException("duplicate tensor name '" + s.name() + "'");
      }
      numel[t] = (int) s.numel();
    }
    groupOfTensor = new int[tensors.size()];
    java.util.Arrays.fill(groupOfTensor, -1);
    groupTensors = new int[groups.size()][];
    List<String> names = new ArrayList<>();
    for (int gi = 0; gi < groups.size(); gi++) {
      GroupSpec g = groups.get(gi);
      if (groupIndex.putIfAbsent(g.name(), gi) != null) {
        throw new IllegalArgumentException("duplicate group name '" + g.name() + "'");
      }
      names.add(g.name());
      groupTensors[gi] = assign(g, gi);
    }
    for (int t = 0; t < tensors.size(); t++) {
      if (groupOfTensor[t] < 0) {
        throw new IllegalArgumentException(
            "tensor '" + tensors.get(t).name() + "' is in no group; every tensor needs one");
      }
    }
    groupNames = List.copyOf(names);
    int chunks = 0;
    for (int n : numel) {
      chunks += (n + CHUNK - 1) / CHUNK;
    }
    chunkTensor = new int[chunks];
    chunkFrom = new int[chunks];
    chunkTo = new int[chunks];
    int c = 0;
    for (int t = 0; t < numel.length; t++) {
      for (int from = 0; from < numel[t]; from += CHUNK) {
        chunkTensor[c] = t;
        chunkFrom[c] = from;
        chunkTo[c] = Math.min(numel[t], from + CHUNK);
        c++;
      }
    }
  }

  private int[] assign(GroupSpec g, int gi) {
    int[] members = new int[g.tensorNames().size()];
    for (int j = 0; j < members.length; j++) {
      String name = g.tensorNames().get(j);
      Integer t = tensorIndex.get(name);
      if (t == null) {
        throw new IllegalArgumentException(
            "group '" + g.name() + "' names unknown tensor '" + name + "'");
      }
      if (groupOfTensor[t] >= 0) {
        throw new IllegalArgumentException(
            "tensor '"
                + name
                + "' is in more than one group ('"
                + g.name()
                + "' and an earlier one)");
      }
      groupOfTensor[t] = gi;
      members[j] = t;
    }
    return members;
  }

  int tensorCount() {
    return numel.length;
  }

  int chunkCount() {
    return chunkTensor.length;
  }

  /** Largest chunk length: the size of per-worker scratch buffers. */
  int maxChunk() {
    int max = 0;
    for (int c = 0; c < chunkCount(); c++) {
      max = Math.max(max, chunkTo[c] - chunkFrom[c]);
    }
    return max;
  }

  /** The chunks of the tensors whose entry in {@code selected} is non-null, in order. */
  int[] chunksOf(Object[] selected) {
    int count = 0;
    for (int c = 0; c < chunkCount(); c++) {
      count += selected[chunkTensor[c]] != null ? 1 : 0;
    }
    int[] chunks = new int[count];
    int i = 0;
    for (int c = 0; c < chunkCount(); c++) {
      if (selected[chunkTensor[c]] != null) {
        chunks[i++] = c;
      }
    }
    return chunks;
  }

  /** The index of a tensor, or -1 when unknown. */
  int tensor(String name) {
    Integer t = tensorIndex.get(name);
    return t == null ? -1 : t;
  }

  /** The index of a group; throws for an unknown name. */
  int group(String name) {
    Integer g = groupIndex.get(name);
    if (g == null) {
      throw new IllegalArgumentException("unknown group '" + name + "'; groups are " + groupNames);
    }
    return g;
  }
}
