package dev.roadless.optimizer.server;

import com.google.protobuf.ByteString;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.core.GroupSpec;
import dev.roadless.optimizer.core.OptimizerState;
import dev.roadless.optimizer.core.Variant;
import dev.roadless.optimizer.run.RunSnapshot;
import dev.roadless.optimizer.state.StateCodec;
import dev.roadless.optimizer.state.StateReader;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.optimizer.v1.ExportStateResponse;
import dev.roadless.proto.optimizer.v1.GroupStatus;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.StateChunk;
import dev.roadless.proto.optimizer.v1.StateHeader;
import dev.roadless.proto.optimizer.v1.StateSlot;
import dev.roadless.proto.optimizer.v1.StreamCommit;
import java.io.IOException;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * A run's state as the messages of {@link StateCodec}'s form (a header, slot chunks, an end): what
 * ExportState sends, ImportState receives and the snapshot store writes and reads back.
 */
final class StateStreams {
  static final int FORMAT_VERSION = StateCodec.FORMAT_VERSION;

  /** Imported runs have no upload to compare with: any later upload is a conflict. */
  static final byte[] IMPORTED_DIGEST = new byte[32];

  private StateStreams() {}

  /** The ExportState stream of a run. */
  static Iterator<ExportStateResponse> export(RunSnapshot snapshot) {
    return messages(snapshot, false);
  }

  /** A snapshot's messages: the export plus the initial-values digest. */
  static Iterator<ExportStateResponse> snapshot(RunSnapshot snapshot) {
    return messages(snapshot, true);
  }

  /** Reads a snapshot back from its messages; the run is created only after every check passed. */
  static RunSnapshot restore(StateReader reader) throws IOException {
    try {
      return assemble(reader);
    } catch (RoadlessException e) {
      throw new IOException("invalid state: " + e.getMessage(), e);
    }
  }

  private static RunSnapshot assemble(StateReader reader) throws IOException {
    Importer importer = new Importer(reader.header());
    if (!reader.header().getInitialValuesDigest().isEmpty()) {
      importer.digest = reader.header().getInitialValuesDigest().toByteArray();
    }
    for (ExportStateResponse m = reader.next(); m != null; m = reader.next()) {
      switch (m.getItemCase()) {
        case HEADER -> {}
        case CHUNK -> importer.accept(m.getChunk());
        case END -> {
          return importer.finish(m.getEnd().getTotalElements());
        }
        default -> throw new IOException("an empty message in a snapshot");
      }
    }
    throw new IOException("a snapshot without its end message");
  }

  private static Iterator<ExportStateResponse> messages(RunSnapshot snapshot, boolean withDigest) {
    OptimizerState state = snapshot.state();
    StateHeader.Builder header =
        StateHeader.newBuilder()
            .setRunId(snapshot.id())
            .setSpec(SpecMapping.toProto(snapshot.config()))
            .setFormatVersion(FORMAT_VERSION)
            .addSlots(StateSlot.STATE_SLOT_Z)
            .addSlots(StateSlot.STATE_SLOT_X);
    if (withDigest) {
      header.setInitialValuesDigest(ByteString.copyFrom(snapshot.initialDigest()));
    }
    boolean anyV = state.tensorStates().stream().anyMatch(t -> t.v() != null);
    boolean anyM = state.tensorStates().stream().anyMatch(t -> t.m() != null);
    if (anyV) {
      header.addSlots(StateSlot.STATE_SLOT_EXP_AVG_SQ);
    }
    if (anyM) {
      header.addSlots(StateSlot.STATE_SLOT_EXP_AVG);
    }
    state.groups().forEach(g -> header.addGroups(ProtoMapping.group(state.variant(), g)));
    List<Stream<ExportStateResponse>> parts = new ArrayList<>();
    parts.add(Stream.of(ExportStateResponse.newBuilder().setHeader(header).build()));
    long total = 0;
    for (OptimizerState.TensorState t : state.tensorStates()) {
      Map<StateSlot, float[]> slots = new EnumMap<>(StateSlot.class);
      slots.put(StateSlot.STATE_SLOT_Z, t.z());
      slots.put(StateSlot.STATE_SLOT_X, t.x());
      if (t.v() != null) {
        slots.put(StateSlot.STATE_SLOT_EXP_AVG_SQ, t.v());
      }
      if (t.m() != null) {
        slots.put(StateSlot.STATE_SLOT_EXP_AVG, t.m());
      }
      for (Map.Entry<StateSlot, float[]> e : slots.entrySet()) {
        total += e.getValue().length;
        ChunkWriter writer =
            new ChunkWriter(
                List.of(t.name()), new float[][] {e.getValue()}, ChunkWriter.DEFAULT_CHUNK_BYTES);
        StateSlot slot = e.getKey();
        parts.add(
            Stream.iterate(writer, Iterator::hasNext, w -> w)
                .map(w -> w.next())
                .map(
                    c ->
                        ExportStateResponse.newBuilder()
                            .setChunk(StateChunk.newBuilder().setSlot(slot).setChunk(c))
                            .build()));
      }
    }
    parts.add(
        Stream.of(
            ExportStateResponse.newBuilder()
                .setEnd(StreamCommit.newBuilder().setTotalElements(total))
                .build()));
    return parts.stream().flatMap(s -> s).iterator();
  }

  /** Reassembles an imported state; validates everything before a run is created. */
  static final class Importer {
    private final StateHeader header;
    private final RunSpec spec;
    private final Variant variant;
    private final Map<StateSlot, ChunkAssembler> slots = new EnumMap<>(StateSlot.class);
    private byte[] digest = IMPORTED_DIGEST;

    /**
     * Bytes an import of this header's state takes while it arrives: every announced slot of every
     * tensor, float32. Long.MAX_VALUE when the spec's sizes overflow (refused by the budget).
     */
    static long bytes(StateHeader header) {
      try {
        long elements = 0;
        for (var t : header.getSpec().getTensorsList()) {
          long n = 1;
          for (long d : t.getShapeList()) {
            n = Math.multiplyExact(n, Math.max(0, d));
          }
          elements = Math.addExact(elements, n);
        }
        return Math.multiplyExact(4L * Math.max(1, header.getSlotsCount()), elements);
      } catch (ArithmeticException e) {
        return Long.MAX_VALUE;
      }
    }

    Importer(StateHeader header) {
      if (header.getFormatVersion() != FORMAT_VERSION) {
        throw invalid(
            "format_version", "unsupported state format_version " + header.getFormatVersion());
      }
      this.header = header;
      this.spec = SpecMapping.normalize(header.getSpec());
      this.variant = SpecMapping.variant(spec.getVariant());
      List<String> names = spec.getTensorsList().stream().map(d -> d.getName()).toList();
      long[] sizes = spec.getTensorsList().stream().mapToLong(SpecMapping::numel).toArray();
      for (StateSlot slot : header.getSlotsList()) {
        if (slot == StateSlot.STATE_SLOT_UNSPECIFIED || slot == StateSlot.UNRECOGNIZED) {
          throw invalid("slots", "unknown state slot " + slot);
        }
        slots.put(slot, new ChunkAssembler(names, sizes, DataType.DATA_TYPE_FLOAT32, null));
      }
      if (!slots.containsKey(StateSlot.STATE_SLOT_Z)
          || !slots.containsKey(StateSlot.STATE_SLOT_X)) {
        throw invalid("slots", "state must carry the Z and X slots");
      }
      if (header.getGroupsCount() != spec.getParameterGroupsCount()) {
        throw invalid("groups", "one GroupStatus per parameter group is required");
      }
    }

    void accept(StateChunk chunk) {
      ChunkAssembler assembler = slots.get(chunk.getSlot());
      if (assembler == null) {
        throw invalid(
            "slot", "chunk for slot " + chunk.getSlot() + " that the header did not announce");
      }
      assembler.accept(chunk.getChunk());
    }

    RunSnapshot finish(long totalElements) {
      Map<StateSlot, float[][]> values = new EnumMap<>(StateSlot.class);
      long total = 0;
      for (Map.Entry<StateSlot, ChunkAssembler> e : slots.entrySet()) {
        long slotTotal = spec.getTensorsList().stream().mapToLong(SpecMapping::numel).sum();
        values.put(e.getKey(), e.getValue().finish(slotTotal));
        total += slotTotal;
      }
      if (total != totalElements) {
        throw new RoadlessException(
            ErrorReason.ERROR_REASON_STREAM_TRUNCATED,
            "commit declares " + totalElements + " elements, the slots hold " + total);
      }
      List<OptimizerState.GroupState> groups = new ArrayList<>();
      for (int g = 0; g < spec.getParameterGroupsCount(); g++) {
        ParameterGroup pg = spec.getParameterGroups(g);
        GroupStatus s = header.getGroups(g);
        if (!s.getName().equals(pg.getName())) {
          throw invalid(
              "groups",
              "group " + g + " is '" + s.getName() + "', expected '" + pg.getName() + "'");
        }
        var hp = HyperparameterMapping.resolve(variant, null, s.getHyperparameters(), pg.getName());
        groups.add(
            new OptimizerState.GroupState(
                new GroupSpec(pg.getName(), pg.getTensorNamesList(), hp),
                s.getStep(),
                s.getWeightSum(),
                s.getLrMax(),
                s.getLrK(),
                s.getCK(),
                s.getYBeta()));
      }
      List<OptimizerState.TensorState> tensors = new ArrayList<>();
      for (int t = 0; t < spec.getTensorsCount(); t++) {
        tensors.add(
            new OptimizerState.TensorState(
                spec.getTensors(t).getName(),
                values.get(StateSlot.STATE_SLOT_Z)[t],
                values.get(StateSlot.STATE_SLOT_X)[t],
                slotOrNull(values, StateSlot.STATE_SLOT_EXP_AVG_SQ, t),
                slotOrNull(values, StateSlot.STATE_SLOT_EXP_AVG, t)));
      }
      OptimizerState state =
          new OptimizerState(variant, SpecMapping.tensors(spec), groups, tensors, true);
      return new RunSnapshot(header.getRunId(), SpecMapping.config(spec), digest.clone(), state);
    }

    private static float[] slotOrNull(Map<StateSlot, float[][]> values, StateSlot slot, int t) {
      float[][] v = values.get(slot);
      return v == null ? null : v[t];
    }
  }

  private static RoadlessException invalid(String field, String message) {
    return RoadlessException.of(ErrorReason.ERROR_REASON_INVALID_STATE, message)
        .with("field", field)
        .build();
  }
}
