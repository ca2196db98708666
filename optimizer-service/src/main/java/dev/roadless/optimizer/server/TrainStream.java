package dev.roadless.optimizer.server;

import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.core.Sequence;
import dev.roadless.optimizer.run.EarlyParameters;
import dev.roadless.optimizer.run.ParameterSnapshot;
import dev.roadless.optimizer.run.PipelinedPush;
import dev.roadless.optimizer.run.PushResult;
import dev.roadless.optimizer.run.Run;
import dev.roadless.optimizer.run.SummedPush;
import dev.roadless.optimizer.transport.SegmentPush;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.optimizer.v1.GradientHeader;
import dev.roadless.proto.optimizer.v1.TrainRequest;
import dev.roadless.proto.optimizer.v1.TrainResponse;
import dev.roadless.proto.optimizer.v1.TrainStepHeader;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;

/**
 * One replica's Train stream: every push is answered with y of the step after it, once that step is
 * applied, either as chunks or (for a shared-memory push) in the replica's segment.
 */
final class TrainStream extends PushStream {
  private final OutboundPump<Object> pump;
  private final Executor answers;
  private final YBlocks blocks;
  private final StreamObserver<Object> responses;
  private String runId;
  private int replica = -1;

  TrainStream(StreamObserver<Object> responses, TrainingCalls calls) {
    super(responses, calls);
    this.responses = responses;
    this.pump =
        new OutboundPump<>((ServerCallStreamObserver<Object>) responses, calls.metrics().out());
    this.answers = calls.answers();
    this.blocks = calls.yBlocks();
  }

  @Override
  GradientHeader gradientHeader(Object m) {
    return m instanceof TrainRequest r && r.hasHeader() ? r.getHeader() : null;
  }

  @Override
  Long commitTotal(Object m) {
    return m instanceof TrainRequest r && r.hasCommit() ? r.getCommit().getTotalElements() : null;
  }

  @Override
  boolean repeatable() {
    return true;
  }

  @Override
  void onHeader(Object m) {
    GradientHeader h = gradientHeader(m);
    if (runId != null && (!runId.equals(h.getRunId()) || replica != h.getReplica())) {
      throw new RoadlessException(
          ErrorReason.ERROR_REASON_STREAM_OUT_OF_ORDER,
          "run_id and replica must stay the same on one Train stream");
    }
    runId = h.getRunId();
    replica = h.getReplica();
    super.onHeader(m);
  }

  @Override
  EarlyParameters early(GradientHeader header) {
    if (!header.getEarlyParameters()) {
      return null;
    }
    List<String> names = current().tensorNames();
    blocks.reserve(current().tensorSizes());
    return new EarlyParameters() {
      @Override
      public Object encode(int tensor, int from, float[] y, int n) {
        return blocks.copy(names.get(tensor), from, y, n);
      }

      @Override
      public void send(Object message) {
        pump.send(((YBlocks.Block) message).queued(), null);
      }

      @Override
      public void done(Object message) {
        ((YBlocks.Block) message).release();
      }
    };
  }

  @Override
  void onCommit(Object m) {
    Run run = current();
    SegmentPush segment = segment();
    PipelinedPush pipelined = pipelined();
    SummedPush summed = summed();
    PushResult result = commit(commitTotal(m));
    CompletableFuture<Long> applied = run.awaitStep(result.step() + 1);
    if (summed != null && !result.applied()) {
      // Held in the step's one set: the other replica's refusal may void it before the step.
      applied = applied.applyToEither(summed.voided(), s -> s);
    }
    // The step completes waiters on its own thread, under the run's lock: answer elsewhere.
    (applied.isDone() ? applied : applied.thenApplyAsync(s -> s, answers))
        .whenComplete(
            (step, error) -> {
              try {
                if (hasFailed()) {
                  return; // the client went away
                }
                if (error != null) {
                  fail(error instanceof CompletionException c ? c.getCause() : error);
                } else if (segment != null) {
                  answerInSharedMemory(run, result, segment);
                } else if (pipelined != null && pipelined.sentEarly()) {
                  answerAfterEarlyChunks(run, result, pipelined.step() + 1);
                } else {
                  answerWithChunks(run, result);
                }
              } finally {
                if (segment != null) {
                  segment.close(); // y is in the segment (or never will be)
                }
              }
            });
  }

  private void answerWithChunks(Run run, PushResult result) {
    ParameterSnapshot y = run.acquireParameters(Sequence.TRAIN);
    List<Integer> order = TrainingCalls.all(run);
    TrainStepHeader header =
        TrainStepHeader.newBuilder()
            .setPush(ProtoMapping.push(TrainingCalls.answered(result, y.step())))
            .setParameters(TrainingCalls.header(run, y.sequence(), y.step(), order))
            .build();
    pump.send(
        new ParameterMessages(
            TrainResponse.newBuilder().setHeader(header).build(),
            y,
            order,
            ChunkWriter.DEFAULT_CHUNK_BYTES,
            TrainResponse.newBuilder().setEnd(TrainingCalls.end(run, order)).build()),
        this::clientTurn);
  }

  /** Every chunk of y at {@code yStep} was sent before: the answer is a header and an end. */
  private void answerAfterEarlyChunks(Run run, PushResult result, long yStep) {
    sendHeaderAndEnd(run, result, yStep, TrainStepHeader.newBuilder().setParametersSentEarly(true));
  }

  /** The answer without chunks: {@code header} with the push result and y's header, then end. */
  private void sendHeaderAndEnd(
      Run run, PushResult result, long yStep, TrainStepHeader.Builder header) {
    List<Integer> order = TrainingCalls.all(run);
    header
        .setPush(ProtoMapping.push(TrainingCalls.answered(result, yStep)))
        .setParameters(TrainingCalls.header(run, Sequence.TRAIN, yStep, order));
    pump.send(
        List.<Object>of(
                TrainResponse.newBuilder().setHeader(header).build(),
                TrainResponse.newBuilder().setEnd(TrainingCalls.end(run, order)).build())
            .iterator(),
        this::clientTurn);
  }

  /** y is in the replica's segment: the answer is a header and an end. */
  private void answerInSharedMemory(Run run, PushResult result, SegmentPush segment) {
    long yStep;
    try {
      yStep = segment.parametersStep();
    } catch (RoadlessException e) {
      fail(e);
      return;
    }
    metrics().sharedMemoryOut().add(segment.totalElements() * 4);
    sendHeaderAndEnd(
        run, result, yStep, TrainStepHeader.newBuilder().setParametersInSharedMemory(true));
  }

  @Override
  void onClientDone() {
    pump.send(Collections.emptyIterator(), responses::onCompleted);
  }
}
