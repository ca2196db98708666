package dev.roadless.optimizer.store;

import dev.roadless.optimizer.core.GroupSpec;
import dev.roadless.optimizer.core.Hyperparameters;
import dev.roadless.optimizer.core.OptimizerState;
import dev.roadless.optimizer.core.TensorSpec;
import dev.roadless.optimizer.core.Variant;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The header block of {@link StateCodec}'s format: everything except the float arrays, in the order
 * documented there. Decoding is strict; any inconsistency is an {@link IllegalArgumentException} or
 * a {@link java.nio.BufferUnderflowException}, which the codec turns into an {@link
 * java.io.IOException}.
 */
final class StateHeader {
  static final int Z = 1;
  static final int X = 2;
  static final int V = 4;
  static final int M = 8;
  private static final int MAX_STRING_BYTES = 1 << 16;

  /** The decoded header: the state without its arrays, plus which arrays each tensor has. */
  record Decoded(
      Variant variant,
      boolean initialized,
      List<TensorSpec> tensors,
      List<OptimizerState.GroupState> groups,
      int[] arrayMasks) {}

  private StateHeader() {}

  static byte[] encode(OptimizerState s) {
    Out o = new Out();
    o.str(s.variant().name());
    o.u8(s.initialized() ? 1 : 0);
    o.i32(s.tensors().size());
    for (TensorSpec t : s.tensors()) {
      o.str(t.name());
      int[] shape = t.shape();
      o.i32(shape.length);
      for (int d : shape) {
        o.i32(d);
      }
    }
    o.i32(s.groups().size());
    for (OptimizerState.GroupState g : s.groups()) {
      o.str(g.spec().name());
      o.i32(g.spec().tensorNames().size());
      g.spec().tensorNames().forEach(o::str);
      hyperparameters(o, g.spec().hyperparameters());
      o.i64(g.k());
      o.f64(g.weightSum());
      o.f64(g.lrMax());
      o.f64(g.lrK());
      o.f64(g.ck());
      o.f64(g.yBeta());
    }
    for (OptimizerState.TensorState t : s.tensorStates()) {
      o.u8(Z | X | (t.v() != null ? V : 0) | (t.m() != null ? M : 0));
    }
    return o.bytes.toByteArray();
  }

  private static void hyperparameters(Out o, Hyperparameters h) {
    o.f64(h.lr());
    o.f64(h.beta());
    o.f64(h.beta2());
    o.f64(h.eps());
    o.f64(h.weightDecay());
    o.i64(h.warmupSteps());
    o.f64(h.r());
    o.f64(h.weightLrPower());
    o.f64(h.innerMomentum());
    o.u8(h.decayAtZ() ? 1 : 0);
    o.u8(h.silentSgdPhase() ? 1 : 0);
    o.f64(h.weightDecayAtY());
    o.f64(h.baseMomentum());
    o.f64(h.baseDampening());
    o.u8(h.baseNesterov() ? 1 : 0);
  }

  static Decoded decode(byte[] header) {
    ByteBuffer b = ByteBuffer.wrap(header).order(ByteOrder.LITTLE_ENDIAN);
    Variant variant = Variant.valueOf(str(b));
    boolean initialized = bool(b);
    int tensorCount = count(b, "tensor");
    List<TensorSpec> tensors = new ArrayList<>();
    for (int t = 0; t < tensorCount; t++) {
      String name = str(b);
      int[] shape = new int[count(b, "dimension")];
      for (int d = 0; d < shape.length; d++) {
        shape[d] = b.getInt();
      }
      tensors.add(new TensorSpec(name, shape));
    }
    int groupCount = count(b, "group");
    List<OptimizerState.GroupState> groups = new ArrayList<>();
    for (int g = 0; g < groupCount; g++) {
      String name = str(b);
      List<String> members = new ArrayList<>();
      for (int j = count(b, "member"); j > 0; j--) {
        members.add(str(b));
      }
      Hyperparameters hp = hyperparameters(b);
      GroupSpec spec = new GroupSpec(name, members, hp);
      groups.add(
          new OptimizerState.GroupState(
              spec,
              b.getLong(),
              b.getDouble(),
              b.getDouble(),
              b.getDouble(),
              b.getDouble(),
              b.getDouble()));
    }
    int[] masks = new int[tensorCount];
    for (int t = 0; t < tensorCount; t++) {
      masks[t] = b.get() & 0xff;
      if ((masks[t] & (Z | X)) != (Z | X) || (masks[t] & ~(Z | X | V | M)) != 0) {
        throw new IllegalArgumentException("bad array mask " + masks[t] + " for tensor " + t);
      }
    }
    if (b.hasRemaining()) {
      throw new IllegalArgumentException(b.remaining() + " unexpected bytes after the header");
    }
    return new Decoded(variant, initialized, tensors, groups, masks);
  }

  private static Hyperparameters hyperparameters(ByteBuffer b) {
    return new Hyperparameters(
        b.getDouble(),
        b.getDouble(),
        b.getDouble(),
        b.getDouble(),
        b.getDouble(),
        b.getLong(),
        b.getDouble(),
        b.getDouble(),
        b.getDouble(),
        bool(b),
        bool(b),
        b.getDouble(),
        b.getDouble(),
        b.getDouble(),
        bool(b));
  }

  private static boolean bool(ByteBuffer b) {
    byte v = b.get();
    if (v != 0 && v != 1) {
      throw new IllegalArgumentException("bad boolean byte " + v);
    }
    return v == 1;
  }

  private static int count(ByteBuffer b, String what) {
    int n = b.getInt();
    // Every counted item takes at least one header byte, so a larger count is corruption.
    if (n < 0 || n > b.remaining()) {
      throw new IllegalArgumentException("bad " + what + " count " + n);
    }
    return n;
  }

  private static String str(ByteBuffer b) {
    int n = b.getInt();
    if (n < 0 || n > MAX_STRING_BYTES || n > b.remaining()) {
      throw new IllegalArgumentException("bad string length " + n);
    }
    byte[] bytes = new byte[n];
    b.get(bytes);
    return new String(bytes, StandardCharsets.UTF_8);
  }

  /** A little-endian byte sink. */
  private static final class Out {
    final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    private final ByteBuffer scratch = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);

    void u8(int v) {
      bytes.write(v);
    }

    void i32(int v) {
      bytes.write(scratch.clear().putInt(v).array(), 0, 4);
    }

    void i64(long v) {
      bytes.write(scratch.clear().putLong(v).array(), 0, 8);
    }

    void f64(double v) {
      bytes.write(scratch.clear().putDouble(v).array(), 0, 8);
    }

    void str(String s) {
      byte[] b = s.getBytes(StandardCharsets.UTF_8);
      i32(b.length);
      bytes.write(b, 0, b.length);
    }
  }
}
