package dev.roadless.trainer.service;

import dev.roadless.common.bn.BatchNormBuffers;
import dev.roadless.common.bn.BatchNormProtos;
import dev.roadless.common.bn.BatchNormStatistics;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.client.Parameters;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.optimizer.v1.Sequence;
import dev.roadless.proto.trainer.v1.BatchNormLayerStatistics;
import dev.roadless.proto.trainer.v1.ComputeBatchNormStatisticsRequest;
import dev.roadless.proto.trainer.v1.ComputeBatchNormStatisticsResponse;
import dev.roadless.proto.trainer.v1.EvaluateRequest;
import dev.roadless.proto.trainer.v1.EvaluateResponse;
import dev.roadless.proto.trainer.v1.GetStatusRequest;
import dev.roadless.proto.trainer.v1.GetStatusResponse;
import dev.roadless.proto.trainer.v1.StartRequest;
import dev.roadless.proto.trainer.v1.StartResponse;
import dev.roadless.proto.trainer.v1.StopRequest;
import dev.roadless.proto.trainer.v1.StopResponse;
import dev.roadless.proto.trainer.v1.TrainerServiceGrpc;
import dev.roadless.trainer.data.Batch;
import dev.roadless.trainer.data.IdxDataset;
import dev.roadless.trainer.data.Sharding;
import dev.roadless.trainer.eval.BatchNormRecalibration;
import dev.roadless.trainer.eval.Evaluation;
import dev.roadless.trainer.eval.RecomputedStatistics;
import dev.roadless.trainer.eval.StatisticsMode;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Thin gRPC adapter over {@link Trainer}; failures are thrown and mapped in one interceptor. */
final class TrainerGrpcService extends TrainerServiceGrpc.TrainerServiceImplBase {
  private final Trainer trainer;

  TrainerGrpcService(Trainer trainer) {
    this.trainer = trainer;
  }

  @Override
  public void start(StartRequest request, StreamObserver<StartResponse> responses) {
    boolean started = trainer.start(request);
    StartResponse.Builder out = StartResponse.newBuilder().setStarted(started);
    out.addAllTensors(trainer.job().runSpec().getTensorsList());
    responses.onNext(out.setStatus(trainer.status()).build());
    responses.onCompleted();
  }

  @Override
  public void stop(StopRequest request, StreamObserver<StopResponse> responses) {
    boolean stopped;
    try {
      stopped = trainer.stop(request.getDrain(), 60_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while stopping", e);
    }
    responses.onNext(
        StopResponse.newBuilder().setStopped(stopped).setStatus(trainer.status()).build());
    responses.onCompleted();
  }

  @Override
  public void getStatus(GetStatusRequest request, StreamObserver<GetStatusResponse> responses) {
    responses.onNext(GetStatusResponse.newBuilder().setStatus(trainer.status()).build());
    responses.onCompleted();
  }

  @Override
  public void computeBatchNormStatistics(
      ComputeBatchNormStatisticsRequest request,
      StreamObserver<ComputeBatchNormStatisticsResponse> responses) {
    TrainingJob job = trainer.job();
    BatchNormRecalibration.Options options = options(request);
    int batches = request.getBatches() == 0 ? 50 : request.getBatches();
    if (batches < 1 || batches > 10_000) {
      throw TrainingJob.invalid(
          ErrorReason.ERROR_REASON_INVALID_RUN_SPEC, "batches", "batches must be in [1, 10000]");
    }
    int replicas = job.request().getReplicas();
    int batchSize =
        request.getBatchSize() == 0
            ? job.request().getGlobalBatchSize() / replicas
            : request.getBatchSize();
    if (batchSize < 2 || (long) batchSize * replicas > job.train().size()) {
      throw TrainingJob.invalid(
          ErrorReason.ERROR_REASON_INVALID_RUN_SPEC,
          "batch_size",
          "batch_size must be in [2, examples/replicas]");
    }
    Sequence sequence = sequenceOrEval(request.getSequence());
    Parameters p = trainer.parameters(request.getRunId(), sequence, request.getMinStep());
    Sharding sharding =
        new Sharding(request.getDataSeed(), job.train().size(), batchSize * replicas, replicas);
    List<Batch> data = new ArrayList<>();
    for (int i = 0; i < batches; i++) {
      data.add(job.train().batch(sharding.slice(i, job.request().getReplica())));
    }
    RecomputedStatistics stats =
        BatchNormRecalibration.recompute(job.modelSnapshot(), weights(p), data, options);
    ComputeBatchNormStatisticsResponse.Builder out =
        ComputeBatchNormStatisticsResponse.newBuilder()
            .setRunId(request.getRunId())
            .setSequence(sequence)
            .setStep(p.step())
            .setMode(request.getMode())
            .setBatches(batches)
            .setReplica(job.request().getReplica());
    Map<String, BatchNormBuffers> buffers = stats.buffers();
    stats
        .statistics()
        .forEach(
            (layer, s) ->
                out.addLayers(
                    BatchNormProtos.toProto(layer, s, buffers.get(layer).numBatchesTracked())));
    responses.onNext(out.build());
    responses.onCompleted();
  }

  @Override
  public void evaluate(EvaluateRequest request, StreamObserver<EvaluateResponse> responses) {
    TrainingJob job = trainer.job();
    Sequence sequence = sequenceOrEval(request.getSequence());
    int batchSize = request.getBatchSize() == 0 ? 500 : request.getBatchSize();
    if (batchSize < 1 || batchSize > 4096 || request.getMaxExamples() < 0) {
      throw TrainingJob.invalid(
          ErrorReason.ERROR_REASON_INVALID_RUN_SPEC,
          "batch_size",
          "batch_size must be in [1, 4096]");
    }
    if (request.getUseTrainingStatistics() && request.getStatisticsCount() > 0) {
      throw TrainingJob.invalid(
          ErrorReason.ERROR_REASON_INVALID_RUN_SPEC,
          "statistics",
          "give statistics or use_training_statistics, not both");
    }
    Map<String, BatchNormBuffers> buffers = new LinkedHashMap<>();
    if (request.getUseTrainingStatistics()) {
      buffers = job.modelSnapshot().batchNormBuffers();
    } else {
      for (BatchNormLayerStatistics s : request.getStatisticsList()) {
        buffers.put(
            s.getLayer(), statistics(job, s).toBuffers(0, BatchNormBuffers.DEFAULT_MOMENTUM));
      }
    }
    for (String layer : job.model().batchNormLayers()) {
      if (!buffers.containsKey(layer)) {
        throw RoadlessException.of(
                ErrorReason.ERROR_REASON_MISSING_TENSOR,
                "no statistics for BatchNorm layer " + layer)
            .with("tensor", layer)
            .build();
      }
    }
    Parameters p = trainer.parameters(request.getRunId(), sequence, request.getMinStep());
    IdxDataset data = job.holdout();
    if (request.getMaxExamples() > 0 && request.getMaxExamples() < data.size()) {
      data = data.first((int) request.getMaxExamples());
    }
    Evaluation.Result r =
        Evaluation.evaluate(job.modelSnapshot(), weights(p), buffers, data, batchSize);
    responses.onNext(
        EvaluateResponse.newBuilder()
            .setSequence(sequence)
            .setStep(p.step())
            .setLoss(r.loss())
            .setAccuracy(r.accuracy())
            .setExamples(r.examples())
            .setCorrect(Math.round(r.accuracy() * r.examples()))
            .build());
    responses.onCompleted();
  }

  private static BatchNormRecalibration.Options options(ComputeBatchNormStatisticsRequest r) {
    double momentum = r.hasMomentum() ? r.getMomentum() : BatchNormBuffers.DEFAULT_MOMENTUM;
    if (!(momentum > 0 && momentum <= 1)) {
      throw TrainingJob.invalid(
          ErrorReason.ERROR_REASON_INVALID_RUN_SPEC, "momentum", "momentum must be in (0, 1]");
    }
    StatisticsMode mode =
        switch (r.getMode()) {
          case BATCH_NORM_STATISTICS_MODE_EMA -> StatisticsMode.EMA;
          case BATCH_NORM_STATISTICS_MODE_PRECISE -> StatisticsMode.PRECISE;
          case BATCH_NORM_STATISTICS_MODE_CUMULATIVE -> StatisticsMode.CUMULATIVE;
          default ->
              throw TrainingJob.invalid(
                  ErrorReason.ERROR_REASON_INVALID_RUN_SPEC, "mode", "mode is required");
        };
    boolean restart = mode != StatisticsMode.EMA || r.getRestart();
    return new BatchNormRecalibration.Options(mode, momentum, restart);
  }

  private static Sequence sequenceOrEval(Sequence s) {
    return s == Sequence.SEQUENCE_UNSPECIFIED ? Sequence.SEQUENCE_EVAL : s;
  }

  private static Map<String, float[]> weights(Parameters p) {
    Map<String, float[]> w = new LinkedHashMap<>();
    for (String name : p.names()) {
      w.put(name, p.get(name));
    }
    return w;
  }

  private static BatchNormStatistics statistics(TrainingJob job, BatchNormLayerStatistics s) {
    if (!job.model().batchNormLayers().contains(s.getLayer())) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_UNKNOWN_TENSOR, "no BatchNorm layer '" + s.getLayer() + "'")
          .with("tensor", s.getLayer())
          .build();
    }
    int channels;
    synchronized (job.model()) { // the training loop writes the buffers (TrainingJob.modelSnapshot)
      channels = job.model().batchNormBuffers().get(s.getLayer()).channels();
    }
    if (s.getMeanCount() != channels || s.getM2Count() != channels || s.getCount() < 2) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_SIZE_MISMATCH,
              "layer " + s.getLayer() + " needs " + channels + " channels and count >= 2")
          .with("tensor", s.getLayer())
          .build();
    }
    return BatchNormProtos.fromProto(s);
  }
}
