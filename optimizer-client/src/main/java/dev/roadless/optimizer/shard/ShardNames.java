package dev.roadless.optimizer.shard;

import dev.roadless.proto.common.v1.TensorDescriptor;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The names of a sharded run's tensors on its shards (S > 1), which carry everything needed to put
 * the whole spec back together from the shards' specs alone (the checkpoint service gathers with
 * nothing else):
 *
 * <pre>
 *   {index}:all:{name}                  the whole tensor, with its shape
 *   {index}:{from}-{to}/{shape}:{name}  elements [from, to) of it, shape [to - from];
 *                                       {shape} is the whole tensor's, "50000x768"
 * </pre>
 *
 * where {@code index} is the tensor's position in the whole spec. Every character is one the
 * optimizer accepts in a tensor name ({@code [A-Za-z0-9_.:/-]}, at most 256).
 */
public final class ShardNames {
  /** The longest tensor name the optimizer accepts. */
  static final int MAX_NAME = 256;

  private static final Pattern NAME =
      Pattern.compile("(\\d+):(?:all|(\\d+)-(\\d+)/([0-9x]*)):(.+)", Pattern.DOTALL);

  /** A shard tensor name, parsed. {@code shape} is the whole tensor's. */
  public record Parsed(int index, String name, long[] shape, int from, int to, boolean whole) {}

  private ShardNames() {}

  static String name(int index, TensorDescriptor d, int from, int to, boolean whole) {
    String derived;
    if (whole) {
      derived = index + ":all:" + d.getName();
    } else {
      StringBuilder shape = new StringBuilder();
      for (long dim : d.getShapeList()) {
        shape.append(shape.length() == 0 ? "" : "x").append(dim);
      }
      derived = index + ":" + from + "-" + to + "/" + shape + ":" + d.getName();
    }
    if (derived.length() > MAX_NAME) {
      throw new IllegalArgumentException(
          "tensor '" + d.getName() + "' is too long a name to shard (" + derived + ")");
    }
    return derived;
  }

  /**
   * Parses a shard tensor of a sharded run.
   *
   * @throws IllegalArgumentException if {@code d} is not named as {@link ShardPlan} names them
   */
  public static Parsed parse(TensorDescriptor d) {
    Matcher m = NAME.matcher(d.getName());
    if (!m.matches()) {
      throw new IllegalArgumentException("'" + d.getName() + "' is not a shard tensor name");
    }
    int index = Integer.parseInt(m.group(1));
    if (m.group(2) == null) {
      long[] shape = d.getShapeList().stream().mapToLong(Long::longValue).toArray();
      int n = Math.toIntExact(numel(d.getShapeList()));
      return new Parsed(index, m.group(5), shape, 0, n, true);
    }
    List<Long> dims = new ArrayList<>();
    if (!m.group(4).isEmpty()) {
      for (String dim : m.group(4).split("x", -1)) {
        dims.add(Long.parseLong(dim));
      }
    }
    int from = Integer.parseInt(m.group(2));
    int to = Integer.parseInt(m.group(3));
    if (from >= to || to > numel(dims) || d.getShapeCount() != 1 || d.getShape(0) != to - from) {
      throw new IllegalArgumentException("'" + d.getName() + "' does not fit its shape");
    }
    return new Parsed(
        index, m.group(5), dims.stream().mapToLong(Long::longValue).toArray(), from, to, false);
  }

  static long numel(List<Long> shape) {
    long n = 1;
    for (long dim : shape) {
      n = Math.multiplyExact(n, dim);
    }
    return n;
  }
}
