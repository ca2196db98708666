package dev.roadless.optimizer.security;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.roadless.common.runtime.ServiceRuntime;
import dev.roadless.common.security.TlsFiles;
import dev.roadless.proto.optimizer.v1.ListRunsRequest;
import dev.roadless.proto.optimizer.v1.OptimizerServiceGrpc;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The plaintext port for Kubernetes' probes answers health and nothing else. */
class HealthPortTest {
  @Test
  void healthPort_plaintext_answersHealthOnly(@TempDir Path dir) throws Exception {
    try (SecureSetup s = new SecureSetup(dir, TlsFiles.ClientAuth.OPTIONAL)) {
      int port;
      try (ServerSocket free = new ServerSocket(0)) {
        port = free.getLocalPort();
      }
      ServiceRuntime runtime =
          new ServiceRuntime("optimizer-service", Logger.getLogger("health-port-test"));
      runtime.healthPort(port, s.server.healthService());
      ManagedChannel plain =
          Grpc.newChannelBuilderForAddress("127.0.0.1", port, InsecureChannelCredentials.create())
              .build();
      try {
        assertEquals(
            HealthCheckResponse.ServingStatus.SERVING,
            HealthGrpc.newBlockingStub(plain)
                .check(
                    HealthCheckRequest.newBuilder()
                        .setService(OptimizerServiceGrpc.SERVICE_NAME)
                        .build())
                .getStatus());
        StatusRuntimeException e =
            assertThrows(
                StatusRuntimeException.class,
                () ->
                    OptimizerServiceGrpc.newBlockingStub(plain)
                        .listRuns(ListRunsRequest.getDefaultInstance()));
        assertEquals(Status.Code.UNIMPLEMENTED, e.getStatus().getCode());
      } finally {
        plain.shutdownNow();
      }
    }
  }
}
