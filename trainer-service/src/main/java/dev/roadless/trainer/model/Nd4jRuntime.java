package dev.roadless.trainer.model;

import org.deeplearning4j.config.DL4JSystemProperties;

/**
 * Process-wide DL4J settings the trainer relies on, applied before the first network is built.
 *
 * <p>DL4J 1.0.0-M2.1 disables its native layer helpers (oneDNN on the CPU, cuDNN on CUDA) unless
 * the system property {@code org.eclipse.deeplearning4j.helpers.disable} is {@code false}. The
 * trainer turns them on, because the oneDNN convolution is about ten times faster than DL4J's
 * fallback, unless the user set the property explicitly (for example {@code
 * -Dorg.eclipse.deeplearning4j.helpers.disable=true} to compare). See also {@code
 * org.nd4j.nativeblas.Nd4jCpu}, which repairs DL4J's oneDNN availability check.
 */
final class Nd4jRuntime {
  private Nd4jRuntime() {}

  static synchronized void configure() {
    if (System.getProperty(DL4JSystemProperties.DISABLE_HELPER_PROPERTY) == null) {
      System.setProperty(DL4JSystemProperties.DISABLE_HELPER_PROPERTY, "false");
    }
  }
}
