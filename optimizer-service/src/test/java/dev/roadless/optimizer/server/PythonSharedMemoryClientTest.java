package dev.roadless.optimizer.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.protobuf.DescriptorProtos.FileDescriptorSet;
import com.google.protobuf.Descriptors.FileDescriptor;
import dev.roadless.optimizer.client.ClientOptions;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.optimizer.client.ReplicaSession;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.optimizer.v1.OptimizerServiceProto;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.optimizer.v1.StepMode;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A replica written in Python (grpcio, protobuf and numpy only: messages from a descriptor set, the
 * segment as a numpy memmap) trains through shared memory against the real server on loopback, and
 * ends at exactly the x of a Java replica sending chunks with the same gradients. Skipped, saying
 * why, when python3 lacks grpcio (`.ci/run` installs it from the wheels on disk).
 */
class PythonSharedMemoryClientTest {
  private static final int STEPS = 20;

  @Test
  void pythonReplica_throughSharedMemory_sameXAsJavaChunks(@TempDir Path work) throws Exception {
    assumeTrue(
        pythonHas("grpc", "numpy", "google.protobuf"),
        "python3 with grpcio, protobuf and numpy is needed (python3 -m pip install grpcio protobuf"
            + " numpy)");
    Path shm = Files.createDirectory(work.resolve("shm"));
    try (Harness h = new Harness(null, 4 << 20, true, shm)) {
      h.newRun("py", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));
      h.newRun("java", Harness.spec(1, StepMode.STEP_MODE_SYNC, 0));

      Path descriptors = work.resolve("optimizer.binpb");
      Files.write(descriptors, descriptorSet().toByteArray());
      Path out = work.resolve("x.f32");
      Process p =
          new ProcessBuilder(
                  "python3",
                  Path.of("src/test/python/shm_client.py").toString(),
                  Integer.toString(h.server.port()),
                  descriptors.toString(),
                  "py",
                  Integer.toString(STEPS),
                  out.toString())
              .redirectErrorStream(true)
              .start();
      String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      assertTrue(p.waitFor(120, TimeUnit.SECONDS), log);
      assertEquals(0, p.exitValue(), log);
      assertTrue(log.contains("done: " + STEPS + " steps through shared memory"), log);

      float[][] expected = trainJava(h);
      ByteBuffer bytes = ByteBuffer.wrap(Files.readAllBytes(out)).order(ByteOrder.LITTLE_ENDIAN);
      for (float[] tensor : expected) {
        float[] actual = new float[tensor.length];
        bytes.asFloatBuffer().get(actual);
        bytes.position(bytes.position() + 4 * tensor.length);
        assertArrayEquals(tensor, actual, log);
      }
      assertEquals(STEPS * 17 * 4.0 * 2, sharedMemoryBytes(h), "in and out through the segment");
    }
  }

  /** The same loop in Java over chunks: g = y * 0.5 + 0.25 in float32. */
  private static float[][] trainJava(Harness h) {
    OptimizerClient client =
        new OptimizerClient(h.channel, ClientOptions.defaults().withSharedMemory(false));
    try (ReplicaSession s = new ReplicaSession(client, "java", 0, DataType.DATA_TYPE_FLOAT32)) {
      Parameters y = s.current();
      while (y.step() < STEPS) {
        float[][] g = new float[y.values().length][];
        for (int t = 0; t < g.length; t++) {
          g[t] = new float[y.values()[t].length];
          for (int i = 0; i < g[t].length; i++) {
            g[t][i] = y.values()[t][i] * 0.5f + 0.25f;
          }
        }
        y = s.next(y, g);
      }
    }
    return client.parameters("java", Sequence.SEQUENCE_EVAL, 0).values();
  }

  private static double sharedMemoryBytes(Harness h) {
    return h.metrics.registry().scrape().stream()
        .filter(m -> m.getMetadata().getName().equals("roadless_shared_memory_bytes"))
        .flatMap(m -> m.getDataPoints().stream())
        .mapToDouble(
            p ->
                ((io.prometheus.metrics.model.snapshots.CounterSnapshot.CounterDataPointSnapshot) p)
                    .getValue())
        .sum();
  }

  /** The optimizer API and everything it imports, dependencies first. */
  private static FileDescriptorSet descriptorSet() {
    Set<FileDescriptor> ordered = new LinkedHashSet<>();
    add(OptimizerServiceProto.getDescriptor(), ordered);
    FileDescriptorSet.Builder set = FileDescriptorSet.newBuilder();
    ordered.forEach(f -> set.addFile(f.toProto()));
    return set.build();
  }

  private static void add(FileDescriptor file, Set<FileDescriptor> ordered) {
    for (FileDescriptor dependency : file.getDependencies()) {
      add(dependency, ordered);
    }
    ordered.add(file);
  }

  private static boolean pythonHas(String... modules) {
    List<String> cmd = new ArrayList<>(List.of("python3", "-c"));
    cmd.add("import " + String.join(", ", modules));
    try {
      Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
      ByteArrayOutputStream ignored = new ByteArrayOutputStream();
      p.getInputStream().transferTo(ignored);
      return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
    } catch (java.io.IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }
}
