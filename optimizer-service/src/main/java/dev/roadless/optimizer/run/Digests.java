package dev.roadless.optimizer.run;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.List;

/** SHA-256 of named float32 tensors, to recognise a repeated upload without keeping it. */
final class Digests {
  private Digests() {}

  static byte[] of(List<String> names, float[][] values) {
    MessageDigest sha = sha256();
    ByteBuffer buf = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
    for (int t = 0; t < names.size(); t++) {
      sha.update(names.get(t).getBytes(StandardCharsets.UTF_8));
      float[] v = values[t];
      for (int i = 0; i < v.length; ) {
        buf.clear();
        int n = Math.min(v.length - i, buf.capacity() / 4);
        buf.asFloatBuffer().put(v, i, n);
        sha.update(buf.array(), 0, n * 4);
        i += n;
      }
    }
    return sha.digest();
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JDK has no SHA-256", e);
    }
  }
}
