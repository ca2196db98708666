package org.nd4j.nativeblas;

/**
 * Compatibility shim for a bug in DL4J 1.0.0-M2.1, not part of the trainer's API.
 *
 * <p>DL4J decides whether its oneDNN layer helpers (convolution, BatchNorm, ...) may run by
 * reflectively calling {@code org.nd4j.nativeblas.Nd4jCpu$Environment.getInstance().isUseMKLDNN()}
 * ({@code BaseMKLDNNHelper.mklDnnEnabled()}). In ND4J M2.1 that class moved to {@code
 * org.nd4j.linalg.cpu.nativecpu.bindings.Nd4jCpu$Environment} and the method became {@code
 * isUseONEDNN()}, so the lookup always fails and the helpers never run: convolutions fall back to a
 * Java-side im2col + gemm path that is about ten times slower. This class answers the old lookup by
 * asking the real environment. On other backends (CUDA) the real class is absent and it answers
 * false, which is what DL4J would conclude anyway.
 */
public final class Nd4jCpu {
  private Nd4jCpu() {}

  /** The subset of the old {@code Nd4jCpu.Environment} that DL4J's helper check calls. */
  public static final class Environment {
    private static final Environment INSTANCE = new Environment();

    private Environment() {}

    public static Environment getInstance() {
      return INSTANCE;
    }

    /** Whether the loaded libnd4j build has oneDNN enabled. */
    public boolean isUseMKLDNN() {
      try {
        Class<?> c = Class.forName("org.nd4j.linalg.cpu.nativecpu.bindings.Nd4jCpu$Environment");
        Object env = c.getMethod("getInstance").invoke(null);
        return (Boolean) c.getMethod("isUseONEDNN").invoke(env);
      } catch (ReflectiveOperationException | LinkageError e) {
        return false;
      }
    }
  }
}
