package dev.roadless.optimizer.server;

import com.google.protobuf.ByteString;
import dev.roadless.common.RunIds;
import dev.roadless.common.error.Errors;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.optimizer.core.Variant;
import dev.roadless.optimizer.run.MemoryBudget;
import dev.roadless.optimizer.run.Run;
import dev.roadless.optimizer.run.RunMemory;
import dev.roadless.optimizer.run.RunRegistry;
import dev.roadless.optimizer.run.RunSnapshot;
import dev.roadless.optimizer.shm.SharedSegment;
import dev.roadless.optimizer.transport.SharedMemoryTransport;
import dev.roadless.optimizer.wire.WireMethods;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.optimizer.v1.AttachSharedMemoryRequest;
import dev.roadless.proto.optimizer.v1.AttachSharedMemoryResponse;
import dev.roadless.proto.optimizer.v1.CreateRunRequest;
import dev.roadless.proto.optimizer.v1.CreateRunResponse;
import dev.roadless.proto.optimizer.v1.DeleteRunRequest;
import dev.roadless.proto.optimizer.v1.DeleteRunResponse;
import dev.roadless.proto.optimizer.v1.ExportStateRequest;
import dev.roadless.proto.optimizer.v1.ExportStateResponse;
import dev.roadless.proto.optimizer.v1.GetRunStatusRequest;
import dev.roadless.proto.optimizer.v1.GetRunStatusResponse;
import dev.roadless.proto.optimizer.v1.ImportStateRequest;
import dev.roadless.proto.optimizer.v1.ImportStateResponse;
import dev.roadless.proto.optimizer.v1.ListRunsRequest;
import dev.roadless.proto.optimizer.v1.ListRunsResponse;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import dev.roadless.proto.optimizer.v1.RollbackRunRequest;
import dev.roadless.proto.optimizer.v1.RollbackRunResponse;
import dev.roadless.proto.optimizer.v1.UpdateHyperparametersRequest;
import dev.roadless.proto.optimizer.v1.UpdateHyperparametersResponse;
import dev.roadless.proto.optimizer.v1.UploadInitialValuesRequest;
import dev.roadless.proto.optimizer.v1.UploadInitialValuesResponse;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import io.grpc.ServiceDescriptor;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.ServerCalls;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Semaphore;

/**
 * Thin gRPC adapter over {@link RunRegistry}: validates and converts messages, streams tensors with
 * flow control. Failures are thrown as {@link RoadlessException} and mapped to statuses by {@link
 * Errors}, in one place.
 */
final class OptimizerGrpcService extends OptimizerServiceGrpc.OptimizerServiceImplBase {
  private final RunRegistry runs;
  private final Metrics metrics;
  private final SnapshotScheduler snapshots;

  private final TrainingCalls training;

  private final IdleStreams idle;
  private final Semaphore exports;
  private final int maxExports;

  OptimizerGrpcService(
      RunRegistry runs,
      Metrics metrics,
      SnapshotScheduler snapshots,
      SharedMemoryTransport segments,
      IdleStreams idle,
      int maxExports) {
    this.runs = runs;
    this.metrics = metrics;
    this.snapshots = snapshots;
    this.idle = idle;
    this.exports = new Semaphore(maxExports);
    this.maxExports = maxExports;
    this.training = new TrainingCalls(runs, metrics, snapshots, segments, idle);
  }

  /**
   * The generated binding, with PushGradients, Train and GetParameters replaced by their chunk fast
   * path ({@link WireMethods}; same method names and wire bytes, other message classes).
   */
  ServerServiceDefinition definition() {
    ServerServiceDefinition generated = bindService();
    ServiceDescriptor base = generated.getServiceDescriptor();
    Map<String, ServerMethodDefinition<?, ?>> fast =
        Map.of(
            WireMethods.PUSH_GRADIENTS.getFullMethodName(),
            ServerMethodDefinition.create(
                WireMethods.PUSH_GRADIENTS,
                ServerCalls.asyncClientStreamingCall(training::pushGradients)),
            WireMethods.TRAIN.getFullMethodName(),
            ServerMethodDefinition.create(
                WireMethods.TRAIN, ServerCalls.asyncBidiStreamingCall(training::train)),
            WireMethods.GET_PARAMETERS.getFullMethodName(),
            ServerMethodDefinition.create(
                WireMethods.GET_PARAMETERS,
                ServerCalls.asyncServerStreamingCall(training::getParameters)));
    ServiceDescriptor.Builder descriptor =
        ServiceDescriptor.newBuilder(base.getName())
            .setSchemaDescriptor(base.getSchemaDescriptor());
    List<ServerMethodDefinition<?, ?>> methods = new ArrayList<>();
    for (ServerMethodDefinition<?, ?> m : generated.getMethods()) {
      ServerMethodDefinition<?, ?> chosen =
          fast.getOrDefault(m.getMethodDescriptor().getFullMethodName(), m);
      descriptor.addMethod(chosen.getMethodDescriptor());
      methods.add(chosen);
    }
    ServerServiceDefinition.Builder out = ServerServiceDefinition.builder(descriptor.build());
    methods.forEach(out::addMethod);
    return out.build();
  }

  @Override
  public void createRun(CreateRunRequest request, StreamObserver<CreateRunResponse> responses) {
    RunRegistry.Created created =
        runs.create(request.getRunId(), SpecMapping.config(request.getSpec()));
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
    return new InboundStream<UploadInitialValuesRequest>(responses, metrics.in(), idle) {
      private Run run;
      private ChunkAssembler assembler;
      private float[][] buffers;

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
        Run target = run;
        // Assembled in one of the run's recycled gradient sets, taken at the first chunk: the one
        // its admission reserved (no memory beyond the run's), or one admitted then while pushes
        // hold it. Copied into z and x at the commit, the set is back for the first push.
        assembler =
            new ChunkAssembler(
                run.tensorNames(),
                run.tensorSizes(),
                () -> buffers = target.acquireBuffers(),
                DataType.DATA_TYPE_FLOAT32,
                ErrorReason.ERROR_REASON_NON_FINITE_VALUE);
      }

      @Override
      void onChunk(UploadInitialValuesRequest m) {
        assembler.accept(m.getChunk());
      }

      @Override
      void onCommit(UploadInitialValuesRequest m) {
        boolean stored;
        try {
          stored = run.setInitialValues(assembler.finish(m.getCommit().getTotalElements()));
        } finally {
          assembler = null;
          giveBack();
        }
        responses.onNext(UploadInitialValuesResponse.newBuilder().setStored(stored).build());
        responses.onCompleted();
      }

      @Override
      void failed(Throwable t) {
        giveBack();
      }

      private void giveBack() {
        if (buffers != null) {
          run.releaseBuffers(buffers);
          buffers = null;
        }
      }
    };
  }

  @Override
  public void attachSharedMemory(
      AttachSharedMemoryRequest request, StreamObserver<AttachSharedMemoryResponse> responses) {
    SharedSegment segment =
        training.attachSharedMemory(
            request.getRunId(), request.getReplica(), request.getLocalityProof().toByteArray());
    String probe = training.probe().toAbsolutePath().toString();
    if (segment == null) {
      responses.onNext(AttachSharedMemoryResponse.newBuilder().setProbePath(probe).build());
      responses.onCompleted();
      return;
    }
    long total = segment.totalElements();
    responses.onNext(
        AttachSharedMemoryResponse.newBuilder()
            .setProbePath(probe)
            .setPath(segment.path().toAbsolutePath().toString())
            .setToken(ByteString.copyFrom(segment.token()))
            .setTotalElements(total)
            .setGradientOffset(SharedSegment.gradientOffset())
            .setParametersOffset(SharedSegment.parametersOffset(total))
            .setSizeBytes(SharedSegment.sizeBytes(total))
            .build());
    responses.onCompleted();
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
    Variant variant = run.config().variant();
    run.updateHyperparameters(
        request.getGroup(),
        current ->
            HyperparameterMapping.resolve(
                variant, current, request.getHyperparameters(), request.getGroup()),
        request.hasExpectedStep() ? request.getExpectedStep() : -1);
    // Durable before it is acknowledged: a restart must not bring back the old values (a failed
    // write shows in the run's snapshot_error and the Snapshots health, as any snapshot's does).
    snapshots.snapshotNow(run);
    responses.onNext(
        UpdateHyperparametersResponse.newBuilder()
            .setGroup(ProtoMapping.group(run, request.getGroup()))
            .build());
    responses.onCompleted();
  }

  @Override
  public void exportState(
      ExportStateRequest request, StreamObserver<ExportStateResponse> responses) {
    Run run = runs.get(request.getRunId());
    if (!exports.tryAcquire()) {
      throw RoadlessException.of(
              ErrorReason.ERROR_REASON_CONCURRENCY_LIMIT,
              maxExports + " state exports are running; retry with backoff")
          .with("limit", maxExports)
          .build();
    }
    Releases held = new Releases(exports::release);
    try {
      // The copy the export streams from is admitted before it is taken.
      held.add(
          runs.budget()
              .admit(RunMemory.stateBytes(run.config()), "an export of run '" + run.id() + "'"));
      RunSnapshot snapshot = run.failure() == null ? run.snapshot() : lastFiniteSnapshot(run);
      OutboundPump<ExportStateResponse> pump =
          new OutboundPump<>(
              (ServerCallStreamObserver<ExportStateResponse>) responses, metrics.out());
      pump.send(
          held.around(StateStreams.export(snapshot)),
          () -> {
            held.close();
            responses.onCompleted();
          });
    } catch (RuntimeException e) {
      held.close();
      throw e;
    }
  }

  @Override
  public StreamObserver<ImportStateRequest> importState(
      StreamObserver<ImportStateResponse> responses) {
    return new InboundStream<ImportStateRequest>(responses, metrics.in(), idle) {
      private StateStreams.Importer importer;
      private MemoryBudget.Grant grant;

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
        // Admitted from the header's spec before any chunk arrives (the arrays fill as they do).
        grant =
            runs.budget()
                .admit(StateStreams.Importer.bytes(m.getHeader()), "an import of optimizer state");
        importer = new StateStreams.Importer(m.getHeader());
      }

      @Override
      void failed(Throwable t) {
        if (grant != null) {
          grant.close();
        }
      }

      @Override
      void onChunk(ImportStateRequest m) {
        importer.accept(m.getChunk());
      }

      @Override
      void onCommit(ImportStateRequest m) {
        RunRegistry.Created created;
        try {
          RunSnapshot state = importer.finish(m.getCommit().getTotalElements());
          created =
              runs.importState(state.id(), state.config(), state.state(), state.initialDigest());
        } finally {
          importer = null;
          grant.close();
        }
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
    RunIds.check(request.getRunId());
    boolean deleted = runs.delete(request.getRunId());
    snapshots.forget(request.getRunId());
    training.forgetSegments(request.getRunId());
    responses.onNext(DeleteRunResponse.newBuilder().setDeleted(deleted).build());
    responses.onCompleted();
  }

  /** A FAILED run's last finite snapshot; RUN_FAILED when it has none. */
  private RunSnapshot lastFiniteSnapshot(Run run) {
    RunSnapshot snapshot;
    try {
      snapshot = snapshots.lastSnapshot(run.id());
    } catch (java.io.IOException e) {
      snapshot = null;
    }
    if (snapshot == null) {
      run.checkActive(); // throws RUN_FAILED
      throw new IllegalStateException("a FAILED run passed the check");
    }
    return snapshot;
  }

  @Override
  public void rollbackRun(
      RollbackRunRequest request, StreamObserver<RollbackRunResponse> responses) {
    Run run = runs.get(request.getRunId());
    boolean rolledBack = false;
    if (run.failure() != null) {
      RunSnapshot snapshot = lastFiniteSnapshot(run);
      rolledBack = runs.rollback(run, snapshot);
      run = runs.get(request.getRunId());
      if (rolledBack) {
        snapshots.restored(run);
      }
    }
    responses.onNext(
        RollbackRunResponse.newBuilder()
            .setRolledBack(rolledBack)
            .setStatus(ProtoMapping.status(run))
            .build());
    responses.onCompleted();
  }
}
