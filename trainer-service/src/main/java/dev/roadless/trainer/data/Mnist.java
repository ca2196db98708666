package dev.roadless.trainer.data;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/**
 * The bundled 10,000 real MNIST digits (see {@code resources/mnist/README.md} for attribution):
 * 8,000 for training and a stratified hold-out of 2,000.
 */
public final class Mnist {
  private Mnist() {}

  /** The 8,000 training digits. */
  public static IdxDataset train() {
    return bundled("train");
  }

  /** The 2,000 hold-out digits. */
  public static IdxDataset holdout() {
    return bundled("holdout");
  }

  private static IdxDataset bundled(String split) {
    String images = "/mnist/" + split + "-images-idx3-ubyte.gz";
    String labels = "/mnist/" + split + "-labels-idx1-ubyte.gz";
    try (InputStream i = open(images);
        InputStream l = open(labels)) {
      return IdxDataset.read(i, images, l, labels);
    } catch (IOException e) {
      throw new UncheckedIOException("bundled MNIST " + split + " is unreadable", e);
    }
  }

  private static InputStream open(String resource) throws IOException {
    InputStream in = Mnist.class.getResourceAsStream(resource);
    if (in == null) {
      throw new IOException("resource " + resource + " is missing from the classpath");
    }
    return in;
  }
}
