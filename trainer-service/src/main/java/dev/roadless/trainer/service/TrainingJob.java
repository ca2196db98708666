package dev.roadless.trainer.service;

import dev.roadless.common.RunIds;
import dev.roadless.common.error.RoadlessException;
import dev.roadless.proto.common.v1.ErrorReason;
import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.trainer.v1.DatasetSpec;
import dev.roadless.proto.trainer.v1.StartRequest;
import dev.roadless.trainer.data.DatasetRoots;
import dev.roadless.trainer.data.IdxDataset;
import dev.roadless.trainer.data.Mnist;
import dev.roadless.trainer.model.Model;
import dev.roadless.trainer.model.ModelSpec;
import dev.roadless.trainer.model.ModelTensor;
import dev.roadless.trainer.model.ModelTooLargeException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * One replica's validated training configuration and what it loads: the model, the data and the
 * optimizer run spec. Built from a {@link StartRequest}; refuses bad input with a {@link
 * RoadlessException} before anything starts. Dataset files are read only under the trainer's {@link
 * DatasetRoots}.
 */
record TrainingJob(
    StartRequest request, Model model, IdxDataset train, IdxDataset holdout, RunSpec runSpec) {

  /**
   * An independent copy of the live model, parameters and BatchNorm buffers from one moment: the
   * training loop holds the model's monitor for each step (it sets y and runs forward and
   * backward), so a copy is never torn between two steps.
   */
  Model modelSnapshot() {
    synchronized (model) {
      return model.copy();
    }
  }

  static TrainingJob of(StartRequest r, DatasetRoots roots) {
    RunIds.check(r.getRunId());
    if (r.getReplicas() < 1 || r.getReplicas() > 1024) {
      throw invalid(
          ErrorReason.ERROR_REASON_INVALID_RUN_SPEC, "replicas", "replicas must be in [1, 1024]");
    }
    if (r.getReplica() < 0 || r.getReplica() >= r.getReplicas()) {
      throw invalid(
          ErrorReason.ERROR_REASON_REPLICA_OUT_OF_RANGE,
          "replica",
          "replica must be in [0, replicas)");
    }
    if (r.getGlobalBatchSize() < r.getReplicas() || r.getGlobalBatchSize() % r.getReplicas() != 0) {
      throw invalid(
          ErrorReason.ERROR_REASON_INVALID_RUN_SPEC,
          "global_batch_size",
          "global_batch_size must be a positive multiple of replicas");
    }
    if (r.getMaxSteps() < 0 || r.getProgressEverySteps() < 0) {
      throw invalid(ErrorReason.ERROR_REASON_INVALID_RUN_SPEC, "max_steps", "must be >= 0");
    }
    ModelSpec spec;
    Model model;
    try {
      spec =
          ModelSpec.parse(
              r.getModel().getArchitecture(),
              r.getModel().getInputShapeList().stream().mapToInt(Integer::intValue).toArray());
      model = Model.create(spec, r.getModel().getInitSeed());
    } catch (ModelTooLargeException e) {
      // Refused while validating the spec: nothing was allocated.
      throw RoadlessException.of(ErrorReason.ERROR_REASON_INVALID_MODEL_SPEC, e.getMessage())
          .with("field", e.field())
          .with("limit", e.limit())
          .build();
    } catch (IllegalArgumentException e) {
      throw invalid(ErrorReason.ERROR_REASON_INVALID_MODEL_SPEC, "model", e.getMessage());
    }
    IdxDataset train = load(r.getDataset(), true, roots);
    IdxDataset holdout = load(r.getDataset(), false, roots);
    if (train.rows() * train.cols() != spec.inputSize()) {
      throw invalid(
          ErrorReason.ERROR_REASON_INVALID_MODEL_SPEC,
          "model.input_shape",
          "the model takes "
              + spec.inputSize()
              + " values per example, the data has "
              + train.rows() * train.cols());
    }
    if (r.getGlobalBatchSize() > train.size()) {
      throw invalid(
          ErrorReason.ERROR_REASON_INVALID_RUN_SPEC,
          "global_batch_size",
          "global_batch_size exceeds the " + train.size() + " training examples");
    }
    return new TrainingJob(r, model, train, holdout, runSpec(r, model.trainableTensors()));
  }

  /** The run replica 0 creates: one group "default" over every trainable tensor. */
  static RunSpec runSpec(StartRequest r, List<ModelTensor> tensors) {
    RunSpec.Builder spec =
        RunSpec.newBuilder()
            .setVariant(r.getVariant())
            .setReplicas(r.getReplicas())
            .setMode(r.getStepMode())
            .setMaxStaleness(r.getMaxStaleness());
    ParameterGroup.Builder group =
        ParameterGroup.newBuilder().setName("default").setHyperparameters(r.getHyperparameters());
    for (ModelTensor t : tensors) {
      TensorDescriptor.Builder d = TensorDescriptor.newBuilder().setName(t.name());
      for (int dim : t.shape()) {
        d.addShape(dim);
      }
      spec.addTensors(d);
      group.addTensorNames(t.name());
    }
    return spec.addParameterGroups(group).build();
  }

  List<String> tensorNames() {
    return model.trainableTensors().stream().map(ModelTensor::name).toList();
  }

  private static IdxDataset load(DatasetSpec d, boolean train, DatasetRoots roots) {
    String images = train ? d.getTrainImagesPath() : d.getHoldoutImagesPath();
    String labels = train ? d.getTrainLabelsPath() : d.getHoldoutLabelsPath();
    if (images.isEmpty() && labels.isEmpty()) {
      return train ? Mnist.train() : Mnist.holdout();
    }
    String prefix = train ? "dataset.train_" : "dataset.holdout_";
    Path imageFile = allowed(roots, images, prefix + "images_path");
    Path labelFile = allowed(roots, labels, prefix + "labels_path");
    try {
      return IdxDataset.load(imageFile, labelFile);
    } catch (IdxDataset.IdxFormatException e) {
      // Both files are under a root the operator opened for datasets: the details may be told.
      throw invalid(
          ErrorReason.ERROR_REASON_DATASET_UNAVAILABLE, prefix + "images_path", e.getMessage());
    } catch (IOException | RuntimeException e) {
      throw refused(prefix + "images_path");
    }
  }

  /** The real path of a dataset file under the roots, or the one refusal that tells nothing. */
  private static Path allowed(DatasetRoots roots, String path, String field) {
    return roots.resolve(path).orElseThrow(() -> refused(field));
  }

  /**
   * The same answer for a path outside the roots, a missing file and an unreadable one: neither the
   * path's existence nor any byte of it may leak to the caller.
   */
  private static RoadlessException refused(String field) {
    return invalid(
        ErrorReason.ERROR_REASON_DATASET_PATH_REFUSED,
        field,
        field + " is not a file this trainer may read (regular files in its dataset directories)");
  }

  static RoadlessException invalid(ErrorReason reason, String field, String message) {
    return RoadlessException.of(reason, message).with("field", field).build();
  }
}
