package dev.roadless.optimizer.shard;

import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.StepMode;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * How one run is spread over S optimizer servers: a pure function of the run spec and S, known to
 * every client and to the checkpoint service, so nobody has to store it.
 *
 * <p>The run's tensors, in spec order, are laid end to end and cut into S element ranges of equal
 * size (ps-lite's key ranges). A cut that falls inside a tensor moves to the tensor's nearer edge
 * when that is within {@link #SNAP} of a shard's share, so small tensors stay whole; a tensor
 * larger than that stays cut by element range, so one huge embedding is spread over several shards
 * instead of sinking the balance. Every shard then holds the same number of elements to within
 * twice {@code SNAP} (z, x and the moments are float32 per element, so bytes balance with them).
 *
 * <p>Each shard is an ordinary run on its own server, with the same id, variant, replicas, mode and
 * groups (each group restricted to the shard's pieces, empty groups dropped) and a derived spec
 * ({@link ShardNames}): the Schedule-Free step is elementwise and its schedule scalars depend only
 * on the step and the hyperparameters, so shards never talk to each other and the union of their
 * steps is bit for bit the step of one server. With S = 1 the plan is the identity: the one shard
 * is the run itself, so an unsharded run is a one-shard run.
 *
 * <p>Only SYNC runs can be sharded: each ASYNC shard would order the pushes by their own arrival.
 */
public final class ShardPlan {
  /** The largest distance, as a fraction of a shard's share, a cut moves to a tensor's edge. */
  public static final double SNAP = 0.02;

  /**
   * Elements {@code [from, to)} of whole tensor {@code tensor}, stored on one shard as {@code
   * name}.
   */
  public record Piece(int tensor, String name, int from, int to, boolean whole) {
    public int length() {
      return to - from;
    }
  }

  /** One shard: its index, the spec of its run and its pieces in the order of that spec. */
  public record Shard(int index, RunSpec spec, List<Piece> pieces) {
    /** The shard run's tensor names, in its spec's order. */
    public List<String> names() {
      return pieces.stream().map(Piece::name).toList();
    }

    /** Elements the shard holds. */
    public long elements() {
      return pieces.stream().mapToLong(Piece::length).sum();
    }
  }

  private final RunSpec spec;
  private final List<Shard> shards;
  private final int[] sizes;

  private ShardPlan(RunSpec spec, List<Shard> shards, int[] sizes) {
    this.spec = spec;
    this.shards = List.copyOf(shards);
    this.sizes = sizes;
  }

  /**
   * The plan of {@code spec} over {@code shards} servers.
   *
   * @throws IllegalArgumentException if S is below 1 or above the run's elements, an ASYNC run is
   *     sharded, or a derived name would be too long
   */
  public static ShardPlan of(RunSpec spec, int shards) {
    if (shards < 1) {
      throw new IllegalArgumentException("shards must be >= 1, not " + shards);
    }
    int[] sizes = new int[spec.getTensorsCount()];
    long total = 0;
    for (int t = 0; t < sizes.length; t++) {
      sizes[t] = Math.toIntExact(ShardNames.numel(spec.getTensors(t).getShapeList()));
      total += sizes[t];
    }
    if (shards == 1) {
      List<Piece> pieces = new ArrayList<>();
      for (int t = 0; t < sizes.length; t++) {
        pieces.add(new Piece(t, spec.getTensors(t).getName(), 0, sizes[t], true));
      }
      return new ShardPlan(spec, List.of(new Shard(0, spec, pieces)), sizes);
    }
    if (spec.getMode() == StepMode.STEP_MODE_ASYNC) {
      throw new IllegalArgumentException("only SYNC runs can be sharded");
    }
    if (total < shards) {
      throw new IllegalArgumentException(total + " elements cannot fill " + shards + " shards");
    }
    long[] cuts = cuts(sizes, total, shards);
    List<Shard> out = new ArrayList<>();
    for (int s = 0; s < shards; s++) {
      List<Piece> pieces = pieces(spec, sizes, cuts[s], cuts[s + 1]);
      out.add(new Shard(s, subSpec(spec, pieces), pieces));
    }
    return new ShardPlan(spec, out, sizes);
  }

  /** Cut positions 0 = c_0 < c_1 < ... < c_S = total in the run's concatenated elements. */
  static long[] cuts(int[] sizes, long total, int shards) {
    long[] edges = new long[sizes.length + 1];
    for (int t = 0; t < sizes.length; t++) {
      edges[t + 1] = edges[t] + sizes[t];
    }
    long[] cuts = new long[shards + 1];
    cuts[shards] = total;
    long snap = (long) Math.floor(SNAP * total / shards);
    for (int s = 1; s < shards; s++) {
      long ideal = total * s / shards;
      int at = Arrays.binarySearch(edges, ideal);
      long cut = ideal;
      if (at < 0) {
        int next = -at - 1; // edges[next - 1] < ideal < edges[next]
        long below = edges[next - 1];
        long above = edges[next];
        long nearer = ideal - below <= above - ideal ? below : above;
        if (Math.abs(nearer - ideal) <= snap) {
          cut = nearer;
        }
      }
      // Keep every shard non-empty (snapping may not pass the previous cut).
      cut = Math.max(cut, cuts[s - 1] + 1);
      cut = Math.min(cut, total - (shards - s));
      cuts[s] = cut;
    }
    return cuts;
  }

  private static List<Piece> pieces(RunSpec spec, int[] sizes, long from, long to) {
    List<Piece> pieces = new ArrayList<>();
    long start = 0;
    for (int t = 0; t < sizes.length; t++) {
      long end = start + sizes[t];
      long a = Math.max(start, from);
      long b = Math.min(end, to);
      if (a < b) {
        int lo = (int) (a - start);
        int hi = (int) (b - start);
        TensorDescriptor d = spec.getTensors(t);
        boolean whole = lo == 0 && hi == sizes[t];
        pieces.add(new Piece(t, ShardNames.name(t, d, lo, hi, whole), lo, hi, whole));
      }
      start = end;
    }
    return pieces;
  }

  private static RunSpec subSpec(RunSpec spec, List<Piece> pieces) {
    RunSpec.Builder b = spec.toBuilder().clearTensors().clearParameterGroups();
    Map<String, List<Piece>> byName = new HashMap<>();
    for (Piece p : pieces) {
      TensorDescriptor d = spec.getTensors(p.tensor());
      TensorDescriptor.Builder sub = d.toBuilder().setName(p.name());
      if (!p.whole()) {
        sub.clearShape().addShape(p.length());
      }
      b.addTensors(sub);
      byName.computeIfAbsent(d.getName(), n -> new ArrayList<>()).add(p);
    }
    for (ParameterGroup g : spec.getParameterGroupsList()) {
      ParameterGroup.Builder sub = g.toBuilder().clearTensorNames();
      for (String name : g.getTensorNamesList()) {
        for (Piece p : byName.getOrDefault(name, List.of())) {
          sub.addTensorNames(p.name());
        }
      }
      if (sub.getTensorNamesCount() > 0) {
        b.addParameterGroups(sub);
      }
    }
    return b.build();
  }

  /**
   * The plan of a sharded run recovered from its shards' specs alone, in shard order (as their
   * GetRunStatus or state headers show them; one spec is an unsharded run).
   *
   * @throws IllegalArgumentException if the specs are not the shards of one run
   */
  public static ShardPlan recover(List<RunSpec> shardSpecs) {
    return WholeSpec.recover(shardSpecs);
  }

  /** The whole run's spec. */
  public RunSpec spec() {
    return spec;
  }

  /** S. */
  public int size() {
    return shards.size();
  }

  public Shard shard(int index) {
    return shards.get(index);
  }

  public List<Shard> shards() {
    return shards;
  }

  /** The whole run's tensor names, in spec order. */
  public List<String> names() {
    return spec.getTensorsList().stream().map(TensorDescriptor::getName).toList();
  }

  /**
   * The whole tensors (spec order) cut into each shard's arrays (its spec order). A whole tensor's
   * array is handed on as it is, a piece is copied.
   */
  public float[][][] split(float[][] whole) {
    if (whole.length != sizes.length) {
      throw new IllegalArgumentException(whole.length + " tensors, the run has " + sizes.length);
    }
    float[][][] out = new float[shards.size()][][];
    for (Shard s : shards) {
      out[s.index()] = new float[s.pieces().size()][];
      for (int i = 0; i < s.pieces().size(); i++) {
        Piece p = s.pieces().get(i);
        float[] w = whole[p.tensor()];
        if (w.length != sizes[p.tensor()]) {
          throw new IllegalArgumentException(
              "tensor " + names().get(p.tensor()) + " has " + w.length + " elements");
        }
        out[s.index()][i] = p.whole() ? w : Arrays.copyOfRange(w, p.from(), p.to());
      }
    }
    return out;
  }

  /**
   * Each shard's arrays (its spec order) put together into whole tensors (spec order). A whole
   * tensor's array is taken as it is, pieces are copied into a new array.
   */
  public float[][] assemble(float[][][] perShard) {
    float[][] whole = new float[sizes.length][];
    for (Shard s : shards) {
      for (int i = 0; i < s.pieces().size(); i++) {
        Piece p = s.pieces().get(i);
        float[] part = perShard[s.index()][i];
        if (part.length != p.length()) {
          throw new IllegalArgumentException(
              "shard " + s.index() + " sent " + part.length + " elements for " + p.name());
        }
        if (p.whole()) {
          whole[p.tensor()] = part;
        } else {
          if (whole[p.tensor()] == null) {
            whole[p.tensor()] = new float[sizes[p.tensor()]];
          }
          System.arraycopy(part, 0, whole[p.tensor()], p.from(), p.length());
        }
      }
    }
    return whole;
  }
}
