package dev.roadless.optimizer.shard;

import dev.roadless.optimizer.state.StateCodec;
import dev.roadless.optimizer.state.StateReader;
import dev.roadless.optimizer.state.StateWriter;
import dev.roadless.proto.common.v1.TensorChunk;
import dev.roadless.proto.optimizer.v1.ExportStateResponse;
import dev.roadless.proto.optimizer.v1.GroupStatus;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.StateChunk;
import dev.roadless.proto.optimizer.v1.StateHeader;
import dev.roadless.proto.optimizer.v1.StreamCommit;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A sharded run's full optimizer state as one state stream ({@link StateCodec}'s form) and back:
 * {@link #gather} joins the S shards' states, all from one step, into the state one server would
 * hold for the whole run; {@link #split} cuts a whole state (or a gathered one) into the states of
 * any number of shards. Both stream message by message, so memory stays at one chunk. Importing the
 * pieces onto S servers and training on through a {@link ShardedClient} continues bit-identically:
 * the state of an element is its z, x and moments, wherever it lives.
 */
public final class ShardedState {
  private ShardedState() {}

  /**
   * Writes the whole state of the run whose shards' states {@code shards} reads (shard order).
   *
   * @return the whole state's header
   * @throws StepsDiffer if the shards' states are not all from one step (the run moved on between
   *     the exports: export again)
   * @throws IOException if a shard's state is corrupt, or they are not the shards of one run
   */
  public static StateHeader gather(List<StateReader> shards, StateWriter out) throws IOException {
    List<StateHeader> headers = new ArrayList<>();
    for (StateReader r : shards) {
      headers.add(r.header());
    }
    List<Long> steps = headers.stream().map(ShardedState::step).toList();
    if (steps.stream().distinct().count() > 1) {
      throw new StepsDiffer(steps);
    }
    ShardPlan plan;
    try {
      plan = ShardPlan.recover(headers.stream().map(StateHeader::getSpec).toList());
    } catch (IllegalArgumentException e) {
      throw new IOException("not the shards of one run: " + e.getMessage(), e);
    }
    Map<String, GroupStatus> groups = new HashMap<>();
    for (StateHeader h : headers) {
      if (!h.getSlotsList().equals(headers.get(0).getSlotsList())) {
        throw new IOException("the shards' states hold different slots");
      }
      for (GroupStatus g : h.getGroupsList()) {
        GroupStatus before = groups.putIfAbsent(g.getName(), g);
        if (before != null && !before.equals(g)) {
          throw new IOException("group '" + g.getName() + "' differs between shards");
        }
      }
    }
    StateHeader.Builder whole =
        StateHeader.newBuilder()
            .setRunId(headers.get(0).getRunId())
            .setSpec(plan.spec())
            .addAllSlots(headers.get(0).getSlotsList())
            .setFormatVersion(StateCodec.FORMAT_VERSION);
    for (ParameterGroup g : plan.spec().getParameterGroupsList()) {
      whole.addGroups(groups.get(g.getName()));
    }
    StateHeader header = whole.build();
    out.write(ExportStateResponse.newBuilder().setHeader(header).build());
    long total = 0;
    for (int s = 0; s < shards.size(); s++) {
      Map<String, ShardPlan.Piece> pieces = new HashMap<>();
      plan.shard(s).pieces().forEach(p -> pieces.put(p.name(), p));
      ExportStateResponse m;
      while ((m = chunkOrEnd(shards.get(s))) != null && m.hasChunk()) {
        TensorChunk c = m.getChunk().getChunk();
        ShardPlan.Piece p = pieces.get(c.getName());
        if (p == null) {
          throw new IOException("shard " + s + " sent a chunk of unknown tensor " + c.getName());
        }
        String name = plan.spec().getTensors(p.tensor()).getName();
        TensorChunk moved =
            c.toBuilder().setName(name).setElementOffset(p.from() + c.getElementOffset()).build();
        out.write(chunk(m.getChunk().getSlot(), moved));
        total += c.getData().size() / 4;
      }
    }
    out.write(end(total));
    return header;
  }

  /**
   * Cuts the whole state {@code whole} into {@code outs.size()} shard states (shard order) by the
   * plan of its spec, and returns that plan. A state of a sharded run must be gathered first.
   */
  public static ShardPlan split(StateReader whole, List<StateWriter> outs) throws IOException {
    StateHeader h = whole.header();
    ShardPlan plan;
    try {
      plan = ShardPlan.of(h.getSpec(), outs.size());
    } catch (IllegalArgumentException e) {
      throw new IOException("cannot shard this state: " + e.getMessage(), e);
    }
    Map<String, GroupStatus> groups = new LinkedHashMap<>();
    h.getGroupsList().forEach(g -> groups.put(g.getName(), g));
    Map<Integer, List<int[]>> where = new HashMap<>(); // tensor -> {shard, index in shard}
    for (ShardPlan.Shard s : plan.shards()) {
      StateHeader.Builder sub =
          h.toBuilder().clearGroups().clearInitialValuesDigest().setSpec(s.spec());
      for (ParameterGroup g : s.spec().getParameterGroupsList()) {
        sub.addGroups(groups.get(g.getName()));
      }
      outs.get(s.index()).write(ExportStateResponse.newBuilder().setHeader(sub).build());
      for (int i = 0; i < s.pieces().size(); i++) {
        where
            .computeIfAbsent(s.pieces().get(i).tensor(), t -> new ArrayList<>())
            .add(new int[] {s.index(), i});
      }
    }
    Map<String, Integer> index = new HashMap<>();
    for (int t = 0; t < h.getSpec().getTensorsCount(); t++) {
      index.put(h.getSpec().getTensors(t).getName(), t);
    }
    long[] totals = new long[outs.size()];
    ExportStateResponse m;
    while ((m = chunkOrEnd(whole)) != null && m.hasChunk()) {
      TensorChunk c = m.getChunk().getChunk();
      Integer t = index.get(c.getName());
      if (t == null) {
        throw new IOException("a chunk of unknown tensor " + c.getName());
      }
      long from = c.getElementOffset();
      long to = from + c.getData().size() / 4;
      for (int[] at : where.get(t)) {
        ShardPlan.Piece p = plan.shard(at[0]).pieces().get(at[1]);
        long a = Math.max(from, p.from());
        long b = Math.min(to, p.to());
        if (a < b) {
          TensorChunk part =
              c.toBuilder()
                  .setName(p.name())
                  .setElementOffset(a - p.from())
                  .setData(c.getData().substring((int) (a - from) * 4, (int) (b - from) * 4))
                  .build();
          outs.get(at[0]).write(chunk(m.getChunk().getSlot(), part));
          totals[at[0]] += b - a;
        }
      }
    }
    for (int s = 0; s < outs.size(); s++) {
      outs.get(s).write(end(totals[s]));
    }
    return plan;
  }

  /** The next chunk or the end message, past the header that {@code header()} already read. */
  private static ExportStateResponse chunkOrEnd(StateReader r) throws IOException {
    ExportStateResponse m = r.next();
    return m != null && m.hasHeader() ? r.next() : m;
  }

  /** The step a state is at (every group of a run is at the same step). */
  public static long step(StateHeader h) {
    return h.getGroupsCount() == 0 ? 0 : h.getGroups(0).getStep();
  }

  private static ExportStateResponse chunk(
      dev.roadless.proto.optimizer.v1.StateSlot slot, TensorChunk c) {
    return ExportStateResponse.newBuilder()
        .setChunk(StateChunk.newBuilder().setSlot(slot).setChunk(c))
        .build();
  }

  private static ExportStateResponse end(long total) {
    return ExportStateResponse.newBuilder()
        .setEnd(StreamCommit.newBuilder().setTotalElements(total))
        .build();
  }

  /** The shards' states are from different steps: the run moved on between their exports. */
  public static final class StepsDiffer extends IOException {
    private final List<Long> steps;

    StepsDiffer(List<Long> steps) {
      super("the shards' states are from steps " + steps + ", not one step");
      this.steps = List.copyOf(steps);
    }

    public List<Long> steps() {
      return steps;
    }
  }
}
