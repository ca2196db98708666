package dev.roadless.checkpoint.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.checkpoint.store.Retention;
import dev.roadless.checkpoint.testing.OptimizerHarness;
import dev.roadless.common.error.Errors;
import dev.roadless.optimizer.client.OptimizerClient;
import dev.roadless.proto.checkpoint.v1.CheckpointServiceGrpc;
import dev.roadless.proto.checkpoint.v1.DownloadCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.DownloadCheckpointResponse;
import dev.roadless.proto.checkpoint.v1.GetCheckpointRequest;
import dev.roadless.proto.checkpoint.v1.ListCheckpointsRequest;
import dev.roadless.proto.checkpoint.v1.SaveStateCheckpointRequest;
import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.RunSpec;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ForwardingServerCall;
import io.grpc.ForwardingServerCallListener;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Many clients that open a download and never read: each holds at most one chunk on the server, at
 * most {@code max-concurrent-downloads} of them run (the rest get CONCURRENCY_LIMIT), the heap
 * stays bounded and other calls keep working.
 */
class StalledDownloadsTest {
  private static final int LIMIT = 40;
  private static final int CLIENTS = 200;
  private static final int PARAMETERS = 1 << 20;

  @TempDir Path dir;

  /** Counts the messages each download sent and when it ended. */
  private static final class Sent implements ServerInterceptor {
    final Map<Object, AtomicInteger> messages = new ConcurrentHashMap<>();
    final CountDownLatch started = new CountDownLatch(LIMIT);
    final CountDownLatch ended = new CountDownLatch(LIMIT);

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(
        ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
      if (!call.getMethodDescriptor().equals(CheckpointServiceGrpc.getDownloadCheckpointMethod())) {
        return next.startCall(call, headers);
      }
      AtomicInteger count = new AtomicInteger();
      ServerCall<Q, R> counted =
          new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
            @Override
            public void sendMessage(R message) {
              super.sendMessage(message);
              if (count.incrementAndGet() == 2) {
                messages.put(this, count);
                started.countDown(); // header and a first chunk are out
              }
            }
          };
      return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(
          next.startCall(counted, headers)) {
        @Override
        public void onCancel() {
          super.onCancel(); // the download's cancel handler has run: its permit is back
          if (count.get() >= 2) {
            ended.countDown();
          }
        }
      };
    }
  }

  private static long usedHeap() {
    System.gc();
    System.gc();
    return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
  }

  @Test
  void download_manyStalledReaders_boundedAndOthersKeepWorking() throws Exception {
    try (OptimizerHarness h = new OptimizerHarness()) {
      int a = h.startOptimizer();
      OptimizerClient optimizer = h.client(a);
      RunSpec small = OptimizerHarness.spec();
      RunSpec big =
          small.toBuilder()
              .setTensors(
                  0, TensorDescriptor.newBuilder().setName("fc.weight").addShape(PARAMETERS))
              .build();
      optimizer.createRun("big", big);
      optimizer.uploadInitialValues(
          "big", OptimizerHarness.NAMES, new float[][] {new float[PARAMETERS], new float[16]});
      Sent sent = new Sent();
      ManagedChannel channel =
          h.checkpointChannel(a, dir, new Retention(0, Retention.BestMetric.NONE), LIMIT, 4, sent);
      var stub = CheckpointServiceGrpc.newBlockingStub(channel);
      String name =
          stub.saveStateCheckpoint(SaveStateCheckpointRequest.newBuilder().setRunId("big").build())
              .getCheckpoint()
              .getName();
      long fileBytes =
          stub
              .getCheckpoint(GetCheckpointRequest.newBuilder().setName(name).build())
              .getCheckpoint()
              .getFilesList()
              .stream()
              .mapToLong(f -> f.getSizeBytes())
              .max()
              .orElse(0);
      assertTrue(fileBytes > 8 * (1 << 20), "file of " + fileBytes + " bytes");
      long before = usedHeap();

      List<ClientCall<DownloadCheckpointRequest, DownloadCheckpointResponse>> calls =
          new ArrayList<>();
      CountDownLatch refused = new CountDownLatch(CLIENTS - LIMIT);
      AtomicInteger otherEnds = new AtomicInteger();
      for (int i = 0; i < CLIENTS; i++) {
        ClientCall<DownloadCheckpointRequest, DownloadCheckpointResponse> call =
            channel.newCall(
                CheckpointServiceGrpc.getDownloadCheckpointMethod(), CallOptions.DEFAULT);
        call.start(
            new ClientCall.Listener<>() {
              @Override
              public void onClose(Status status, Metadata trailers) {
                var info = Errors.errorInfo(status.asRuntimeException(trailers));
                if (status.getCode() == Status.Code.RESOURCE_EXHAUSTED
                    && info != null
                    && info.getReason().equals("CONCURRENCY_LIMIT")
                    && info.getMetadataMap().get("limit").equals(String.valueOf(LIMIT))) {
                  refused.countDown();
                } else if (status.getCode() != Status.Code.CANCELLED) {
                  otherEnds.incrementAndGet();
                }
              }
            },
            new Metadata());
        // Never request(): the reader stalls.
        call.sendMessage(DownloadCheckpointRequest.newBuilder().setName(name).build());
        call.halfClose();
        calls.add(call);
      }
      assertTrue(refused.await(60, TimeUnit.SECONDS), "calls over the limit were not refused");
      assertTrue(sent.started.await(60, TimeUnit.SECONDS), "downloads did not start");
      long held = usedHeap() - before;

      // Each stalled download sent the header and at most a few chunks of the file's many.
      long chunks = fileBytes / CheckpointGrpcService.MAX_CHUNK_BYTES;
      assertEquals(LIMIT, sent.messages.size());
      for (AtomicInteger n : sent.messages.values()) {
        assertTrue(n.get() <= 4, n.get() + " messages sent to a reader that reads nothing");
      }
      assertTrue(chunks >= 8, chunks + " chunks");
      // Unbounded, 200 stalled readers would hold 200 files (GBs); bounded, a few MiB each at most.
      assertTrue(held < 128L << 20, "heap grew by " + (held >> 20) + " MiB");
      assertEquals(0, otherEnds.get());

      // Other calls keep working meanwhile.
      assertEquals(
          1,
          stub.listCheckpoints(ListCheckpointsRequest.newBuilder().setRunId("big").build())
              .getCheckpointsCount());
      assertEquals("big", optimizer.status("big").getRunId());

      // Once the stalled readers go away, their permits are back: a whole download works.
      calls.forEach(c -> c.cancel("test done", null));
      assertTrue(sent.ended.await(60, TimeUnit.SECONDS), "stalled downloads did not end");
      long received = 0;
      Iterator<DownloadCheckpointResponse> it =
          stub.downloadCheckpoint(DownloadCheckpointRequest.newBuilder().setName(name).build());
      while (it.hasNext()) {
        received += it.next().getChunk().getData().size();
      }
      assertEquals(fileBytes, received);
    }
  }
}
