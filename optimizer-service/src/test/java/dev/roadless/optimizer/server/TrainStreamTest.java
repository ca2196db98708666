package dev.roadless.optimizer.server;

import static dev.roadless.optimizer.server.Harness.NAMES;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.roadless.optimizer.core.ScheduleFreeOptimizer;
import dev.roadless.optimizer.core.Sequence;
import dev.roadless.proto.optimizer.v1.PushGradientsRequest;
import dev.roadless.proto.optimizer.v1.PushOutcome;
import dev.roadless.proto.optimizer.v1.StepMode;
import dev.roadless.proto.optimizer.v1.TrainRequest;
import dev.roadless.proto.optimizer.v1.TrainResponse;
import io.grpc.stub.StreamObserver;
import java.nio.ByteOrder;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The bidirectional Train stream: each push is answered with y of the next step. */
class TrainStreamTest {

  /** One replica's open Train stream; answers queue up as they arrive. */
  private static final class Replica {
    final BlockingQueue<Object> inbox;
    final StreamObserver<TrainRequest> out;

    Replica(Harness h) {
      Inbox<TrainResponse> responses = new Inbox<>();
      inbox = responses.queue;
      out = h.async.train(responses);
    }

    void push(int replica, long step, float[][] g) {
      for (PushGradientsRequest m : RawStreams.push("train", replica, step, g)) {
        TrainRequest.Builder t = TrainRequest.newBuilder();
        switch (m.getItemCase()) {
          case HEADER -> t.setHeader(m.getHeader());
          case CHUNK -> t.setChunk(m.getChunk());
          case COMMIT -> t.setCommit(m.getCommit());
          default -> throw new AssertionError();
        }
        out.onNext(t.build());
      }
    }

    /** Reads one answer: header, chunks, end. Returns y per tensor. */
    float[][] answer(long expectedStep) throws InterruptedException {
      TrainResponse header = (TrainResponse) take();
      assertEquals(PushOutcome.PUSH_OUTCOME_APPLIED, header.getHeader().getPush().getOutcome());
      assertEquals(expectedStep, header.getHeader().getParameters().getStep());
      float[][] y = {new float[12], new float[5]};
      while (true) {
        TrainResponse m = (TrainResponse) take();
        if (m.hasEnd()) {
          assertEquals(17, m.getEnd().getTotalElements());
          return y;
        }
        var c = m.getChunk();
        c.getData()
            .asReadOnlyByteBuffer()
            .order(ByteOrder.LITTLE_ENDIAN)
            .asFloatBuffer()
            .get(y[NAMES.indexOf(c.getName())], (int) c.getElementOffset(), c.getData().size() / 4);
      }
    }

    Object take() throws InterruptedException {
      Object o = inbox.poll(20, TimeUnit.SECONDS);
      if (o instanceof Throwable t) {
        throw new AssertionError("stream failed", t);
      }
      return o;
    }
  }

  @Test
  void train_twoReplicaStreams_answerEachStepWithNextY() throws Exception {
    try (Harness h = new Harness()) {
      h.newRun("train", Harness.spec(2, StepMode.STEP_MODE_SYNC, 0));
      ScheduleFreeOptimizer ref = TrainingProtocolTest.reference();
      Replica a = new Replica(h);
      Replica b = new Replica(h);
      for (int k = 0; k < 3; k++) {
        a.push(0, k, TrainingProtocolTest.grad(k, 0));
        // Once the server holds replica 0's push, nothing may come back until replica 1's.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!h.server.runs().get("train").pendingReplicas().equals(List.of(0))
            && System.nanoTime() < deadline) {
          Thread.sleep(2);
        }
        assertEquals(List.of(0), h.server.runs().get("train").pendingReplicas());
        assertEquals(null, a.inbox.poll(200, TimeUnit.MILLISECONDS), "answered before replica 1");
        b.push(1, k, TrainingProtocolTest.grad(k, 1));
        TrainingProtocolTest.referenceStep(
            ref, TrainingProtocolTest.grad(k, 0), TrainingProtocolTest.grad(k, 1));
        for (Replica r : List.of(a, b)) {
          float[][] y = r.answer(k + 1);
          assertArrayEquals(ref.read(Sequence.TRAIN, "w"), y[0]);
          assertArrayEquals(ref.read(Sequence.TRAIN, "b"), y[1]);
        }
      }
      a.out.onCompleted();
      assertEquals("completed", a.take());
      b.out.onCompleted();
    }
  }
}
