package dev.roadless.optimizer.server;

import dev.roadless.optimizer.core.OptimizerState;
import dev.roadless.optimizer.run.RunSnapshot;
import dev.roadless.optimizer.state.StateCodec;
import dev.roadless.optimizer.state.StateWriter;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.ExportStateResponse;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.StepMode;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * A bare {@link OptimizerState} through the one state codec, exactly as a snapshot stores it: the
 * state under a one-replica SYNC spec, written by the server's mapping and the codec, read back.
 */
public final class StateFiles {
  private StateFiles() {}

  /** The state's snapshot bytes. */
  public static byte[] encode(OptimizerState state) {
    return encode(state, UnaryOperator.identity());
  }

  /** The state's snapshot bytes, each message passed through {@code edit} before writing. */
  public static byte[] encode(OptimizerState state, UnaryOperator<ExportStateResponse> edit) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    StateWriter writer = StateCodec.writer(out);
    RunSnapshot snapshot =
        new RunSnapshot("state", SpecMapping.config(spec(state)), new byte[32], state);
    try {
      for (Iterator<ExportStateResponse> it = StateStreams.snapshot(snapshot); it.hasNext(); ) {
        writer.write(edit.apply(it.next()));
      }
    } catch (IOException e) {
      throw new IllegalStateException("in-memory write failed", e);
    }
    return out.toByteArray();
  }

  /** One state from {@code in}, leaving bytes after it unread. */
  public static OptimizerState read(InputStream in) throws IOException {
    return StateStreams.restore(StateCodec.reader(in, Long.MAX_VALUE)).state();
  }

  /** The state in {@code bytes}; trailing bytes are an error. */
  public static OptimizerState decode(byte[] bytes) throws IOException {
    ByteArrayInputStream in = new ByteArrayInputStream(bytes);
    OptimizerState s = StateStreams.restore(StateCodec.reader(in, bytes.length)).state();
    if (in.available() > 0) {
      throw new IOException(in.available() + " unexpected bytes after the optimizer state");
    }
    return s;
  }

  private static RunSpec spec(OptimizerState s) {
    RunSpec.Builder spec =
        RunSpec.newBuilder()
            .setVariant(SpecMapping.variant(s.variant()))
            .setReplicas(1)
            .setMode(StepMode.STEP_MODE_SYNC);
    s.tensors()
        .forEach(
            t -> {
              List<Long> shape = new ArrayList<>();
              for (int d : t.shape()) {
                shape.add((long) d);
              }
              spec.addTensors(
                  TensorDescriptor.newBuilder()
                      .setName(t.name())
                      .setDtype(DataType.DATA_TYPE_FLOAT32)
                      .addAllShape(shape));
            });
    for (OptimizerState.GroupState g : s.groups()) {
      spec.addParameterGroups(
          ParameterGroup.newBuilder()
              .setName(g.spec().name())
              .addAllTensorNames(g.spec().tensorNames())
              .setHyperparameters(
                  HyperparameterMapping.toProto(s.variant(), g.spec().hyperparameters())));
    }
    return spec.build();
  }
}
