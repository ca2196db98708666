package dev.roadless.common.security;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import dev.roadless.proto.checkpoint.v1.CheckpointServiceGrpc;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import dev.roadless.proto.trainer.v1.TrainerServiceGrpc;
import io.grpc.MethodDescriptor;
import io.grpc.ServiceDescriptor;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** The policy table covers every RPC of the three services, and nothing else. */
class RpcPolicyTest {
  @Test
  void table_coversEveryRpcOfTheThreeServices_andNoOther() {
    Set<String> methods = new TreeSet<>();
    for (ServiceDescriptor s :
        new ServiceDescriptor[] {
          OptimizerServiceGrpc.getServiceDescriptor(),
          TrainerServiceGrpc.getServiceDescriptor(),
          CheckpointServiceGrpc.getServiceDescriptor()
        }) {
      for (MethodDescriptor<?, ?> m : s.getMethods()) {
        methods.add(m.getFullMethodName());
        assertNotNull(RpcPolicy.rule(m.getFullMethodName()), m.getFullMethodName());
      }
    }
    assertEquals(methods, new TreeSet<>(RpcPolicy.table().keySet()));
  }

  @Test
  void adminAllowsEveryRpc_andOnlyOperatorOrAdminMutateOutsideTraining() {
    Set<String> trainerMutations =
        Set.of("UploadInitialValues", "PushGradients", "Train", "AttachSharedMemory");
    RpcPolicy.table()
        .forEach(
            (method, rule) -> {
              assertEquals(true, rule.roles().contains(Role.ADMIN), method);
              String bare = method.substring(method.indexOf('/') + 1);
              if (rule.mutating() && !trainerMutations.contains(bare)) {
                assertEquals(Set.of(Role.OPERATOR, Role.ADMIN), rule.roles(), method);
              }
              if (rule.roles().contains(Role.READER)) {
                assertEquals(false, rule.mutating(), method);
              }
            });
    Stream.of("ExportState", "ImportState", "DeleteRun", "RollbackRun", "UpdateHyperparameters")
        .forEach(
            m ->
                assertEquals(
                    Set.of(Role.OPERATOR, Role.ADMIN),
                    RpcPolicy.rule("roadless.optimizer.v1.OptimizerService/" + m).roles(),
                    m));
  }

  @Test
  void getParameters_trainSequenceOnlyForTrainersAndAdmins() {
    RpcPolicy.Rule r = RpcPolicy.rule("roadless.optimizer.v1.OptimizerService/GetParameters");
    assertEquals(Set.of(Role.TRAINER, Role.ADMIN), r.rolesFor(true));
    assertEquals(Set.of(Role.TRAINER, Role.READER, Role.OPERATOR, Role.ADMIN), r.rolesFor(false));
  }
}
