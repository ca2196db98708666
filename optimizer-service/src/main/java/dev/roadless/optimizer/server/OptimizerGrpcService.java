package dev.roadless.optimizer.server;

import dev.roadless.optimizer.core.Sequence;
import dev.roadless.optimizer.run.ParameterSnapshot;
import dev.roadless.optimizer.run.PushResult;
import dev.roadless.optimizer.run.Run;
import dev.roadless.optimizer.run.RunException;
import dev.roadless.optimizer.run.RunRegistry;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.optimizer.v1.CreateRunRequest;
import dev.roadless.proto.optimizer.v1.CreateRunResponse;
import dev.roadless.proto.optimizer.v1.DeleteRunRequest;
import dev.roadless.proto.optimizer.v1.DeleteRunResponse;
import dev.roadless.proto.optimizer.v1.ExportStateRequest;
import dev.roadless.proto.optimizer.v1.ExportStateResponse;
import dev.roadless.proto.optimizer.v1.GetParametersRequest;
import dev.roadless.proto.optimizer.v1.GetParametersResponse;
import dev.roadless.proto.optimizer.v1.GetRunStatusRequest;
import dev.roadless.proto.optimizer.v1.GetRunStatusResponse;
import dev.roadless.proto.optimizer.v1.ImportStateRequest;
import dev.roadless.proto.optimizer.v1.ImportStateResponse;
import dev.roadless.proto.optimizer.v1.ListRunsRequest;
import dev.roadless.proto.optimizer.v1.ListRunsResponse;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import dev.roadless.proto.optimizer.v1.ParametersEnd;
import dev.roadless.proto.optimizer.v1.ParametersHeader;
import dev.roadless.proto.optimizer.v1.PushGradientsRequest;
import dev.roadless.proto.optimizer.v1.PushGradientsResponse;
import dev.roadless.proto.optimizer.v1.TrainRequest;
import dev.roadless.proto.optimizer.v1.TrainResponse;
import dev.roadless.proto.optimizer.v1.TrainStepHeader;
import dev.roadless.proto.optimizer.v1.UpdateHyperparametersRequest;
import dev.roadless.proto.optimizer.v1.UpdateHyperparametersResponse;
import dev.roadless.proto.optimizer.v1.UploadInitialValuesRequest;
import dev.roadless.proto.optimizer.v1.UploadInitialValuesResponse;
import io.grpc.Context;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.stream.IntStream;
import java.util.stream.Stream;

/**
 * Thin gRPC adapter over {@link RunRegistry}: validates and converts messages, streams tensors with
 * flow control. Failures are thrown as {@link RunException} and mapped to statuses by {@link
 * Errors}, in one place.
 */
final class OptimizerGrpcService extends OptimizerServiceGrpc.OptimizerServiceImplBase {
  private final RunRegistry runs;
  private final Metrics metrics;
  private final SnapshotScheduler snapshots;

  OptimizerGrpcService(RunRegistry runs, Metrics metrics, SnapshotScheduler snapshots) {
    this.runs = runs;
    this.metrics = metrics;
    this.snapshots = snapshots;
  }

  @Override
  public void createRun(CreateRunRequest request, StreamObserver<CreateRunResponse> responses) {
    RunRegistry.Created created = runs.create(request.getRunId(), request.getSpec());
    responses.onNext(
        CreateRunResponse.newBuilder()
            .setCreated(created.created())
            .setStatus(ProtoMapping.status(created.run()))
            .build());
    responses.onCompleted();
  }

  @Override
  public StreamObserver<UploadInitialValuesRequest> uploadInitialValues(
      StreamObserver<UploadInitialValuesResponse> responses) {
    return new InboundStream<UploadInitialValuesRequest>(responses, metrics.in()) {
      private Run run;
      private ChunkAssembler assembler;

      @Override
      Kind kind(UploadInitialValuesRequest m) {
        return switch (m.getItemCase()) {
          case HEADER -> Kind.HEADER;
          case CHUNK -> Kind.CHUNK;
          case COMMIT -> Kind.COMMIT;
          default -> Kind.OTHER;
        };
      }

      @Override
      void onHeader(UploadInitialValuesRequest m) {
        run = runs.get(m.getHeader().getRunId());
        assembler =
            assembler(run, DataType.DATA_TYPE_FLOAT32, ErrorReason.ERROR_REASON_NON_FINITE_VALUE);
      }

      @Override
      void onChunk(UploadInitialValuesRequest m) {
        assembler.accept(m.getChunk());
      }

      @Override
      void onCommit(UploadInitialValuesRequest m) {
        boolean stored = run.setInitialValues(assembler.finish(m.getCommit().getTotalElements()));
        assembler = null;
        responses.onNext(UploadInitialValuesResponse.newBuilder().setStored(stored).build());
        responses.onCompleted();
      }
    };
  }

  @Override
  public StreamObserver<PushGradientsRequest> pushGradients(
      StreamObserver<PushGradientsResponse> responses) {
    return new PushStream<PushGradientsRequest>(responses) {
      @Override
      Kind kind(PushGradientsRequest m) {
        return switch (m.getItemCase()) {
          case HEADER -> Kind.HEADER;
          case CHUNK -> Kind.CHUNK;
          case COMMIT -> Kind.COMMIT;
          default -> Kind.OTHER;
        };
      }

      @Override
      void onHeader(PushGradientsRequest m) {
        begin(m.getHeader());
      }

      @Override
      void onChunk(PushGradientsRequest m) {
        accept(m.getChunk());
      }

      @Override
      void onCommit(PushGradientsRequest m) {
        PushResult result = commit(m.getCommit().getTotalElements());
        responses.onNext(ProtoMapping.push(result));
        responses.onCompleted();
      }
    };
  }

  @Override
  public StreamObserver<TrainRequest> train(StreamObserver<TrainResponse> responses) {
    ServerCallStreamObserver<TrainResponse> call =
        (ServerCallStreamObserver<TrainResponse>) responses;
    OutboundPump<TrainResponse> pump = new OutboundPump<>(call, metrics.out());
    return new PushStream<TrainRequest>(responses) {
      private String runId;
      private int replica = -1;

      @Override
      Kind kind(TrainRequest m) {
        return switch (m.getItemCase()) {
          case HEADER -> Kind.HEADER;
          case CHUNK -> Kind.CHUNK;
          case COMMIT -> Kind.COMMIT;
          default -> Kind.OTHER;
        };
      }

      @Override
      boolean repeatable() {
        return true;
      }

      @Override
      void onHeader(TrainRequest m) {
        if (runId != null
            && (!runId.equals(m.getHeader().getRunId()) || replica != m.getHeader().getReplica())) {
          throw new RunException(
              ErrorReason.ERROR_REASON_STREAM_OUT_OF_ORDER,
              "run_id and replica must stay the same on one Train stream");
        }
        runId = m.getHeader().getRunId();
        replica = m.getHeader().getReplica();
        begin(m.getHeader());
      }

      @Override
      void onChunk(TrainRequest m) {
        accept(m.getChunk());
      }

      @Override
      void onCommit(TrainRequest m) {
        Run run = current();
        PushResult result = commit(m.getCommit().getTotalElements());
        run.awaitStep(result.step() + 1)
            .whenComplete(
                (step, error) -> {
                  if (error != null) {
                    fail(
                        error instanceof java.util.concurrent.CompletionException c
                            ? c.getCause()
                            : error);
                    return;
                  }
                  ParameterSnapshot y = run.parameters(Sequence.TRAIN);
                  PushResult answered =
                      new PushResult(
                          result.applied() || y.step() > result.step(),
                          result.step(),
                          result.appliedAsStep(),
                          y.step(),
                          result.duplicate());
                  TrainStepHeader header =
                      TrainStepHeader.newBuilder()
                          .setPush(ProtoMapping.push(answered))
                          .setParameters(header(run, y, all(run)))
                          .build();
                  pump.send(
                      trainMessages(header, y, all(run), ChunkWriter.DEFAULT_CHUNK_BYTES), null);
                });
      }

      @Override
      void onClientDone() {
        pump.send(java.util.Collections.emptyIterator(), responses::onCompleted);
      }
    };
  }

  @Override
  public void getParameters(
      GetParametersRequest request, StreamObserver<GetParametersResponse> responses) {
    Run run = runs.get(request.getRunId());
    Sequence sequence = ProtoMapping.sequence(request.getSequence());
    List<Integer> order = select(run, request.getTensorNamesList());
    int chunkBytes =
        request.getMaxChunkBytes() == 0
            ? ChunkWriter.DEFAULT_CHUNK_BYTES
            : request.getMaxChunkBytes();
    if (chunkBytes < 4 || chunkBytes > ChunkWriter.MAX_CHUNK_BYTES) {
      throw RunException.of(
              ErrorReason.ERROR_REASON_SIZE_MISMATCH,
              "max_chunk_bytes must be in [4, " + ChunkWriter.MAX_CHUNK_BYTES + "]")
          .with("field", "max_chunk_bytes")
          .build();
    }
    if (request.getMinStep() == 0) {
      run.parameters(sequence); // fails fast if the run has no values yet
    }
    ServerCallStreamObserver<GetParametersResponse> call =
        (ServerCallStreamObserver<GetParametersResponse>) responses;
    OutboundPump<GetParametersResponse> pump = new OutboundPump<>(call, metrics.out());
    CompletableFuture<Long> reached = run.awaitStep(request.getMinStep());
    Context.current().addListener(ctx -> reached.cancel(false), Runnable::run);
    reached.whenComplete(
        (step, error) -> {
          if (error != null) {
            if (!(error instanceof java.util.concurrent.CancellationException)) {
              responses.onError(Errors.toStatus(error));
            }
            return;
          }
          try {
            ParameterSnapshot snapshot = run.parameters(sequence);
            ParametersHeader header = header(run, snapshot, order);
            Iterator<GetParametersResponse> messages =
                Stream.concat(
                        Stream.of(GetParametersResponse.newBuilder().setHeader(header).build()),
                        Stream.concat(
                            stream(ChunkWriter.of(snapshot, order, chunkBytes))
                                .map(c -> GetParametersResponse.newBuilder().setChunk(c).build()),
                            Stream.of(
                                GetParametersResponse.newBuilder()
                                    .setEnd(
                                        ParametersEnd.newBuilder()
                                            .setTotalElements(total(run, order)))
                                    .build())))
                    .iterator();
            pump.send(messages, responses::onCompleted);
          } catch (RuntimeException e) {
            responses.onError(Errors.toStatus(e));
          }
        });
  }

  @Override
  public void getRunStatus(
      GetRunStatusRequest request, StreamObserver<GetRunStatusResponse> responses) {
    Run run = runs.get(request.getRunId());
    responses.onNext(GetRunStatusResponse.newBuilder().setStatus(ProtoMapping.status(run)).build());
    responses.onCompleted();
  }

  @Override
  public void listRuns(ListRunsRequest request, StreamObserver<ListRunsResponse> responses) {
    ListRunsResponse.Builder out = ListRunsResponse.newBuilder();
    runs.all().forEach(r -> out.addRunIds(r.id()));
    responses.onNext(out.build());
    responses.onCompleted();
  }

  @Override
  public void updateHyperparameters(
      UpdateHyperparametersRequest request,
      StreamObserver<UpdateHyperparametersResponse> responses) {
    Run run = runs.get(request.getRunId());
    run.updateHyperparameters(
        request.getGroup(), request.getHyperparameters(), request.getExpectedStep());
    responses.onNext(
        UpdateHyperparametersResponse.newBuilder()
            .setGroup(ProtoMapping.group(run, request.getGroup()))
            .build());
    responses.onCompleted();
  }

  @Override
  public void exportState(
      ExportStateRequest request, StreamObserver<ExportStateResponse> responses) {
    Run.RunSnapshot snapshot = runs.get(request.getRunId()).snapshot();
    OutboundPump<ExportStateResponse> pump =
        new OutboundPump<>(
            (ServerCallStreamObserver<ExportStateResponse>) responses, metrics.out());
    pump.send(StateStreams.export(snapshot), responses::onCompleted);
  }

  @Override
  public StreamObserver<ImportStateRequest> importState(
      StreamObserver<ImportStateResponse> responses) {
    return new InboundStream<ImportStateRequest>(responses, metrics.in()) {
      private StateStreams.Importer importer;

      @Override
      Kind kind(ImportStateRequest m) {
        return switch (m.getItemCase()) {
          case HEADER -> Kind.HEADER;
          case CHUNK -> Kind.CHUNK;
          case COMMIT -> Kind.COMMIT;
          default -> Kind.OTHER;
        };
      }

      @Override
      void onHeader(ImportStateRequest m) {
        importer = new StateStreams.Importer(m.getHeader());
      }

      @Override
      void onChunk(ImportStateRequest m) {
        importer.accept(m.getChunk());
      }

      @Override
      void onCommit(ImportStateRequest m) {
        Run.RunSnapshot state = importer.finish(m.getCommit().getTotalElements());
        RunRegistry.Created created =
            runs.importState(state.id(), state.spec(), state.state(), state.initialDigest());
        snapshots.requestSnapshot(created.run());
        responses.onNext(
            ImportStateResponse.newBuilder()
                .setCreated(created.created())
                .setStatus(ProtoMapping.status(created.run()))
                .build());
        responses.onCompleted();
      }
    };
  }

  @Override
  public void deleteRun(DeleteRunRequest request, StreamObserver<DeleteRunResponse> responses) {
    RunRegistry.checkRunId(request.getRunId());
    boolean deleted = runs.delete(request.getRunId());
    snapshots.forget(request.getRunId());
    responses.onNext(DeleteRunResponse.newBuilder().setDeleted(deleted).build());
    responses.onCompleted();
  }

  /** Gradient pushes: the same validation for PushGradients and Train. */
  private abstract class PushStream<Q> extends InboundStream<Q> {
    private Run run;
    private ChunkAssembler assembler;
    private float[][] buffers;
    private int replica;
    private long step;

    PushStream(StreamObserver<?> responses) {
      super(responses, metrics.in());
    }

    final Run current() {
      return run;
    }

    final void begin(dev.roadless.proto.optimizer.v1.GradientHeader header) {
      run = runs.get(header.getRunId());
      replica = header.getReplica();
      step = header.getStep();
      // Refuse a push that can never apply before its megabytes arrive.
      run.checkPush(replica, step);
      buffers = run.acquireBuffers();
      assembler =
          new ChunkAssembler(
              run.tensorNames(),
              run.tensorSizes(),
              buffers,
              header.getDtype(),
              ErrorReason.ERROR_REASON_NON_FINITE_GRADIENT);
    }

    final void accept(dev.roadless.proto.common.v1.TensorChunk chunk) {
      assembler.accept(chunk);
    }

    final PushResult commit(long totalElements) {
      float[][] gradient = assembler.finish(totalElements);
      assembler = null;
      buffers = null; // the run owns them now
      PushResult result = run.push(replica, step, gradient);
      if (!result.duplicate() && result.applied()) {
        metrics.stepApplied(run.id());
        snapshots.stepApplied(run);
      }
      return result;
    }

    @Override
    void failed(Throwable t) {
      assembler = null;
      if (run != null) {
        run.releaseBuffers(buffers);
      }
      buffers = null;
      if (t instanceof RunException re && run != null) {
        run.countRefusal(re.reason());
        metrics.pushRefused(Errors.reasonName(re.reason()));
      }
    }
  }

  private static ChunkAssembler assembler(Run run, DataType dtype, ErrorReason nonFinite) {
    return new ChunkAssembler(run.tensorNames(), run.tensorSizes(), dtype, nonFinite);
  }

  private static List<Integer> all(Run run) {
    return IntStream.range(0, run.tensorNames().size()).boxed().toList();
  }

  private static List<Integer> select(Run run, List<String> names) {
    if (names.isEmpty()) {
      return all(run);
    }
    List<Integer> order = new ArrayList<>();
    for (String name : names) {
      int i = run.tensorNames().indexOf(name);
      if (i < 0) {
        throw RunException.of(
                ErrorReason.ERROR_REASON_UNKNOWN_TENSOR,
                "tensor '" + name + "' is not part of the run")
            .with("tensor", name)
            .build();
      }
      order.add(i);
    }
    return order;
  }

  private static ParametersHeader header(Run run, ParameterSnapshot snapshot, List<Integer> order) {
    ParametersHeader.Builder header =
        ParametersHeader.newBuilder()
            .setRunId(run.id())
            .setSequence(ProtoMapping.sequence(snapshot.sequence()))
            .setStep(snapshot.step());
    order.forEach(i -> header.addTensors(run.spec().getTensors(i)));
    return header.build();
  }

  private static long total(Run run, List<Integer> order) {
    long[] sizes = run.tensorSizes();
    return order.stream().mapToLong(i -> sizes[i]).sum();
  }

  private static Iterator<TrainResponse> trainMessages(
      TrainStepHeader header, ParameterSnapshot y, List<Integer> order, int chunkBytes) {
    long total = order.stream().mapToLong(i -> y.values()[i].length).sum();
    return Stream.concat(
            Stream.of(TrainResponse.newBuilder().setHeader(header).build()),
            Stream.concat(
                stream(ChunkWriter.of(y, order, chunkBytes))
                    .map(c -> TrainResponse.newBuilder().setChunk(c).build()),
                Stream.of(
                    TrainResponse.newBuilder()
                        .setEnd(ParametersEnd.newBuilder().setTotalElements(total))
                        .build())))
        .iterator();
  }

  private static <T> Stream<T> stream(Iterator<T> it) {
    return java.util.stream.StreamSupport.stream(
        java.util.Spliterators.spliteratorUnknownSize(it, java.util.Spliterator.ORDERED), false);
  }
}
