package dev.roadless.optimizer.shm;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.Arrays;

/**
 * One replica's shared-memory segment: a file mapped by the server and by the replica. Bytes [0,
 * 64) are the header (magic, token, element count), then the gradient region and the parameters
 * region, each {@code totalElements} little-endian float32 values with the run's tensors back to
 * back in spec order.
 *
 * <p>Who writes what, and when, is the protocol's business: the replica writes the gradient region
 * and then pushes; the server reads it while handling that push, writes the parameters region and
 * then answers. The mapping itself stays valid until the segment object is unreachable (Java 17
 * unmaps on garbage collection), so a deleted file never turns into a crash.
 */
public final class SharedSegment {
  /** The first 8 bytes of every segment file. */
  public static final byte[] MAGIC = "RDLSHM01".getBytes(StandardCharsets.US_ASCII);

  public static final int TOKEN_BYTES = 16;
  private static final int HEADER_BYTES = 64;

  private static final SecureRandom RANDOM = new SecureRandom();

  private final Path path;
  private final byte[] token;
  private final long[] sizes;
  private final long total;
  private final long[] starts;
  private final MappedFloats gradient;
  private final MappedFloats parameters;

  /** The owner's hold plus one per {@link #lease}; the mapping goes when it reaches zero. */
  private final java.util.concurrent.atomic.AtomicInteger holds =
      new java.util.concurrent.atomic.AtomicInteger(1);

  private SharedSegment(Path path, byte[] token, long[] sizes, FileChannel channel)
      throws IOException {
    this.path = path;
    this.token = token;
    this.sizes = sizes.clone();
    this.total = Arrays.stream(sizes).sum();
    this.starts = new long[sizes.length];
    for (int t = 1; t < sizes.length; t++) {
      starts[t] = starts[t - 1] + sizes[t - 1];
    }
    this.gradient = new MappedFloats(channel, gradientOffset(), total);
    this.parameters = new MappedFloats(channel, parametersOffset(total), total);
  }

  /**
   * Owner-only permissions ({@code rw-------}, or {@code rwx------} for a directory) where the file
   * system has POSIX permissions: a segment holds the run's parameters, and only processes of the
   * server's user should map it. Nothing elsewhere.
   */
  public static java.nio.file.attribute.FileAttribute<?>[] ownerOnly(boolean directory) {
    if (!java.nio.file.FileSystems.getDefault().supportedFileAttributeViews().contains("posix")) {
      return new java.nio.file.attribute.FileAttribute<?>[0];
    }
    return new java.nio.file.attribute.FileAttribute<?>[] {
      java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
          java.nio.file.attribute.PosixFilePermissions.fromString(
              directory ? "rwx------" : "rw-------"))
    };
  }

  /** Byte offset of the gradient region. */
  public static long gradientOffset() {
    return HEADER_BYTES;
  }

  /** Byte offset of the parameters region for {@code total} elements (64-byte aligned). */
  public static long parametersOffset(long total) {
    return (HEADER_BYTES + total * 4 + 63) & ~63L;
  }

  /** File size for {@code total} elements. */
  public static long sizeBytes(long total) {
    return parametersOffset(total) + total * 4;
  }

  /**
   * Creates a new segment file (it must not exist) with a fresh random token, sized for tensors of
   * {@code sizes} elements. The file's pages are allocated lazily by the file system.
   */
  public static SharedSegment create(Path file, long[] sizes) throws IOException {
    long total = Arrays.stream(sizes).sum();
    byte[] token = new byte[TOKEN_BYTES];
    RANDOM.nextBytes(token);
    try (FileChannel channel =
        FileChannel.open(
            file,
            java.util.Set.of(
                StandardOpenOption.CREATE_NEW, StandardOpenOption.READ, StandardOpenOption.WRITE),
            ownerOnly(false))) {
      channel.truncate(0);
      ByteBuffer header = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
      header.put(MAGIC).put(token).putLong(total);
      header.clear();
      while (header.hasRemaining()) {
        channel.write(header, header.position()); // buffer position == file offset
      }
      // Allocates every page now with write(2), which fails cleanly (ENOSPC) on a full tmpfs;
      // touching an unallocated page through the mapping later would raise SIGBUS instead.
      ByteBuffer zeros = ByteBuffer.allocateDirect(1 << 20);
      long size = sizeBytes(total);
      for (long at = HEADER_BYTES; at < size; ) {
        zeros.clear().limit((int) Math.min(zeros.capacity(), size - at));
        at += channel.write(zeros, at);
      }
      return new SharedSegment(file, token, sizes, channel);
    }
  }

  /**
   * Maps an existing segment created by the server, after checking that its header carries {@code
   * expectedToken} and the element count of {@code sizes}.
   *
   * @throws IOException when the file is missing or unreadable
   * @throws IllegalStateException when it is not the expected segment (another host's file of the
   *     same name, a stale file, a different run)
   */
  public static SharedSegment open(Path file, byte[] expectedToken, long[] sizes)
      throws IOException {
    long total = Arrays.stream(sizes).sum();
    try (FileChannel channel =
        FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      ByteBuffer header = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
      while (header.hasRemaining() && channel.read(header, header.position()) > 0) {}
      header.flip();
      byte[] magic = new byte[MAGIC.length];
      byte[] token = new byte[TOKEN_BYTES];
      if (header.remaining() < HEADER_BYTES) {
        throw new IllegalStateException(file + " is too short to be a segment");
      }
      header.get(magic).get(token);
      long count = header.getLong();
      if (!Arrays.equals(magic, MAGIC)) {
        throw new IllegalStateException(file + " is not a Roadless segment");
      }
      if (!Arrays.equals(token, expectedToken)) {
        throw new IllegalStateException(file + " carries another token");
      }
      if (count != total || channel.size() < sizeBytes(total)) {
        throw new IllegalStateException(file + " holds " + count + " elements, expected " + total);
      }
      return new SharedSegment(file, token, sizes, channel);
    }
  }

  public Path path() {
    return path;
  }

  public byte[] token() {
    return token.clone();
  }

  /**
   * Holds the mapping for one user (a push that reads the gradient or has y written into the
   * segment); false once the owner let go, and then the segment must not be touched.
   */
  public boolean lease() {
    for (int h = holds.get(); h > 0; h = holds.get()) {
      if (holds.compareAndSet(h, h + 1)) {
        return true;
      }
    }
    return false;
  }

  /**
   * Ends the owner's hold or a {@link #lease}, once each; the last one unmaps the file at once
   * (without waiting for a garbage collection that may never come while the heap is quiet).
   */
  public void release() {
    if (holds.decrementAndGet() == 0) {
      gradient.unmap();
      parameters.unmap();
    }
  }

  /** True when {@code candidate} is this segment's token. */
  public boolean hasToken(byte[] candidate) {
    return java.security.MessageDigest.isEqual(token, candidate);
  }

  public long totalElements() {
    return total;
  }

  /** Writes elements [from, to) of tensor {@code tensor} into the parameters region. */
  public void putParameters(int tensor, float[] src, int from, int to) {
    parameters.put(starts[tensor] + from, src, from, to - from);
  }

  /** Reads elements [from, to) of tensor {@code tensor} from the gradient region. */
  public void getGradient(int tensor, float[] dst, int from, int to) {
    gradient.get(starts[tensor] + from, dst, from, to - from);
  }

  /** The gradient region (the run's tensors back to back, spec order). */
  public MappedFloats gradientRegion() {
    return gradient;
  }

  /** Where tensor {@code tensor} starts in each region, in elements. */
  public long start(int tensor) {
    return starts[tensor];
  }

  /** Reads elements [from, to) of tensor {@code tensor} into {@code dst[at ..]}. */
  public void getGradient(int tensor, int from, int to, float[] dst, int at) {
    gradient.get(starts[tensor] + from, dst, at, to - from);
  }

  /** Writes a gradient (one array per tensor, spec order and sizes) into the gradient region. */
  public void writeGradient(float[][] values) {
    copyOut(values, gradient);
  }

  /** Writes parameters (one array per tensor) into the parameters region. */
  public void writeParameters(float[][] values) {
    copyOut(values, parameters);
  }

  /** Reads the parameters region into {@code into} (one array per tensor, spec sizes). */
  public void readParameters(float[][] into) {
    copyIn(parameters, into);
  }

  /**
   * Copies in blocks of {@link #PARALLEL_BLOCK} on the common fork-join pool and the caller: a
   * single core's memcpy of 40 MB leaves memory bandwidth unused.
   */
  private void copyOut(float[][] values, MappedFloats region) {
    requireShapes(values);
    blocks(values)
        .parallel()
        .forEach(b -> region.put(starts[b[0]] + b[1], values[b[0]], b[1], b[2]));
  }

  private void copyIn(MappedFloats region, float[][] into) {
    requireShapes(into);
    blocks(into).parallel().forEach(b -> region.get(starts[b[0]] + b[1], into[b[0]], b[1], b[2]));
  }

  private static final int PARALLEL_BLOCK = 1 << 18; // floats: 1 MiB

  /** {tensor, from, length} of every block. */
  private static java.util.stream.Stream<int[]> blocks(float[][] arrays) {
    java.util.List<int[]> out = new java.util.ArrayList<>();
    for (int t = 0; t < arrays.length; t++) {
      for (int from = 0; from < arrays[t].length; from += PARALLEL_BLOCK) {
        out.add(new int[] {t, from, Math.min(PARALLEL_BLOCK, arrays[t].length - from)});
      }
    }
    return out.stream();
  }

  private void requireShapes(float[][] arrays) {
    if (arrays.length != sizes.length) {
      throw new IllegalArgumentException(
          arrays.length + " tensors given, the segment holds " + sizes.length);
    }
    for (int t = 0; t < sizes.length; t++) {
      if (arrays[t].length != sizes[t]) {
        throw new IllegalArgumentException(
            "tensor " + t + " has " + arrays[t].length + " elements, expected " + sizes[t]);
      }
    }
  }
}
