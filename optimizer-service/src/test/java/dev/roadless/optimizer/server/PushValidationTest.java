package dev.roadless.optimizer.server;

import static dev.roadless.optimizer.server.Harness.assertRefused;
import static dev.roadless.optimizer.server.RawStreams.chunk;
import static dev.roadless.optimizer.server.RawStreams.commit;
import static dev.roadless.optimizer.server.RawStreams.header;
import static dev.roadless.optimizer.server.RawStreams.send;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.common.error.Errors;
import dev.roadless.proto.common.v1.DataType;
import dev.roadless.proto.optimizer.v1.PushGradientsRequest;
import dev.roadless.proto.optimizer.v1.StepMode;
import io.grpc.Status.Code;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Every refusal of a gradient push: its status, its reason, and that the run did not change. */
class PushValidationTest {
  private static final String RUN = "push-validation";
  private Harness h;
  private String before;

  @BeforeEach
  void setUp() throws Exception {
    h = new Harness();
    h.newRun(RUN, Harness.spec(2, StepMode.STEP_MODE_SYNC, 0));
    // One half-finished SYNC step (replica 1 has pushed) makes "unchanged" a stronger claim.
    send(h.async, RawStreams.push(RUN, 1, 0, Harness.random(11)));
    before = h.fingerprint(RUN);
  }

  @AfterEach
  void tearDown() throws Exception {
    assertEquals(before, h.fingerprint(RUN), "a refused push changed the run");
    h.close();
  }

  private static List<PushGradientsRequest> valid(float[][] g) {
    return new ArrayList<>(RawStreams.push(RUN, 0, 0, g));
  }

  @Test
  void push_unknownRun_notFound() {
    List<PushGradientsRequest> m = RawStreams.push("no-such-run", 0, 0, Harness.random(1));
    assertRefused(Code.NOT_FOUND, "RUN_NOT_FOUND", () -> send(h.async, m));
  }

  @Test
  void push_unknownTensor_invalidArgument() {
    List<PushGradientsRequest> m = valid(Harness.random(1));
    m.add(2, chunk("nope", 0, 1f));
    assertRefused(Code.INVALID_ARGUMENT, "UNKNOWN_TENSOR", () -> send(h.async, m));
  }

  @Test
  void push_missingTensor_invalidArgument() {
    float[][] g = Harness.random(1);
    List<PushGradientsRequest> m =
        List.of(header(RUN, 0, 0, DataType.DATA_TYPE_FLOAT32), chunk("w", 0, g[0]), commit(12));
    assertRefused(Code.INVALID_ARGUMENT, "MISSING_TENSOR", () -> send(h.async, m));
  }

  @Test
  void push_chunkPastEnd_sizeMismatch() {
    float[][] g = Harness.random(1);
    List<PushGradientsRequest> m =
        List.of(
            header(RUN, 0, 0, DataType.DATA_TYPE_FLOAT32),
            chunk("w", 0, g[0]),
            chunk("b", 1, g[1]),
            commit(17));
    assertRefused(Code.INVALID_ARGUMENT, "SIZE_MISMATCH", () -> send(h.async, m));
  }

  @Test
  void push_overlappingChunks_chunkOverlap() {
    float[][] g = Harness.random(1);
    List<PushGradientsRequest> m = valid(g);
    m.add(2, chunk("w", 11, 0.5f));
    assertRefused(Code.INVALID_ARGUMENT, "CHUNK_OVERLAP", () -> send(h.async, m));
  }

  @Test
  void push_gapInTensor_chunkMissing() {
    float[][] g = Harness.random(1);
    List<PushGradientsRequest> m =
        List.of(
            header(RUN, 0, 0, DataType.DATA_TYPE_FLOAT32),
            chunk("w", 0, java.util.Arrays.copyOf(g[0], 6)),
            chunk("w", 7, java.util.Arrays.copyOfRange(g[0], 7, 12)),
            chunk("b", 0, g[1]),
            commit(16));
    var e = assertRefused(Code.INVALID_ARGUMENT, "CHUNK_MISSING", () -> send(h.async, m));
    assertEquals("6", dev.roadless.common.error.Errors.errorInfo(e).getMetadataOrThrow("element"));
  }

  @Test
  void push_dtypeDiffersFromHeader_dtypeMismatch() {
    List<PushGradientsRequest> m = valid(Harness.random(1));
    m.set(0, header(RUN, 0, 0, DataType.DATA_TYPE_BFLOAT16));
    assertRefused(Code.INVALID_ARGUMENT, "DTYPE_MISMATCH", () -> send(h.async, m));
  }

  @Test
  void push_nanGradient_refusedAndCounted() throws Exception {
    float[][] g = Harness.random(1);
    g[1][3] = Float.NaN;
    var e =
        assertRefused(Code.INVALID_ARGUMENT, "NON_FINITE_GRADIENT", () -> send(h.async, valid(g)));
    assertEquals("b", Errors.errorInfo(e).getMetadataOrThrow("tensor"));
    assertEquals("3", Errors.errorInfo(e).getMetadataOrThrow("element"));
    assertEquals(1.0, h.metrics.refusedCount("NON_FINITE_GRADIENT"));
    assertEquals(1L, h.client.status(RUN).getRefusedPushesOrThrow("NON_FINITE_GRADIENT"));
  }

  /**
   * Two finite gradients whose float32 sum overflows: the push that completes the step is refused
   * (its mean would be infinite), the other stays pending, and a corrected push then gives the same
   * bits as a run that never saw the overflow.
   */
  @Test
  void push_finiteGradientsWhoseMeanOverflows_refused_otherStaysPending() throws Exception {
    float[][] g1 = Harness.random(21);
    g1[0][5] = 3e38f;
    float[][] g0 = Harness.random(22);
    g0[0][5] = 2e38f;
    h.newRun("overflow", Harness.spec(2, StepMode.STEP_MODE_SYNC, 0));
    send(h.async, RawStreams.push("overflow", 1, 0, g1));
    String pending = h.fingerprint("overflow");

    var e =
        assertRefused(
            Code.INVALID_ARGUMENT,
            "NON_FINITE_GRADIENT",
            () -> send(h.async, RawStreams.push("overflow", 0, 0, g0)));
    assertEquals("w", Errors.errorInfo(e).getMetadataOrThrow("tensor"));
    assertEquals("5", Errors.errorInfo(e).getMetadataOrThrow("element"));
    assertEquals(pending, h.fingerprint("overflow"), "the refusal changed the run");
    assertEquals(1L, h.client.status("overflow").getRefusedPushesOrThrow("NON_FINITE_GRADIENT"));

    g0[0][5] = -3e38f;
    send(h.async, RawStreams.push("overflow", 0, 0, g0));
    h.newRun("reference", Harness.spec(2, StepMode.STEP_MODE_SYNC, 0));
    send(h.async, RawStreams.push("reference", 1, 0, g1));
    send(h.async, RawStreams.push("reference", 0, 0, g0));
    String applied = h.fingerprint("overflow").replace("overflow", "?");
    assertEquals(h.fingerprint("reference").replace("reference", "?"), applied);
    assertTrue(applied.startsWith("SEQUENCE_TRAIN@1,"), applied);
  }

  @Test
  void push_infGradient_refused() {
    float[][] g = Harness.random(1);
    g[0][0] = Float.NEGATIVE_INFINITY;
    assertRefused(Code.INVALID_ARGUMENT, "NON_FINITE_GRADIENT", () -> send(h.async, valid(g)));
  }

  @Test
  void push_endsWithoutCommit_streamTruncated() {
    List<PushGradientsRequest> m = valid(Harness.random(1));
    m.remove(m.size() - 1);
    assertRefused(Code.INVALID_ARGUMENT, "STREAM_TRUNCATED", () -> send(h.async, m));
  }

  @Test
  void push_commitCountsWrong_streamTruncated() {
    List<PushGradientsRequest> m = valid(Harness.random(1));
    m.set(m.size() - 1, commit(99));
    assertRefused(Code.INVALID_ARGUMENT, "STREAM_TRUNCATED", () -> send(h.async, m));
  }

  @Test
  void push_chunkBeforeHeader_streamOutOfOrder() {
    List<PushGradientsRequest> m = valid(Harness.random(1));
    m.add(0, m.remove(1));
    assertRefused(Code.INVALID_ARGUMENT, "STREAM_OUT_OF_ORDER", () -> send(h.async, m));
  }

  @Test
  void push_replicaOutOfRange_invalidArgument() {
    List<PushGradientsRequest> m = valid(Harness.random(1));
    m.set(0, header(RUN, 2, 0, DataType.DATA_TYPE_FLOAT32));
    assertRefused(Code.INVALID_ARGUMENT, "REPLICA_OUT_OF_RANGE", () -> send(h.async, m));
  }

  @Test
  void push_stepFromFuture_failedPrecondition() {
    List<PushGradientsRequest> m = valid(Harness.random(1));
    m.set(0, header(RUN, 0, 5, DataType.DATA_TYPE_FLOAT32));
    var e = assertRefused(Code.FAILED_PRECONDITION, "STEP_IN_FUTURE", () -> send(h.async, m));
    assertEquals("0", Errors.errorInfo(e).getMetadataOrThrow("current_step"));
  }

  @Test
  void push_duplicateOfPending_acceptedOnceOnly() throws Exception {
    var again = send(h.async, RawStreams.push(RUN, 1, 0, Harness.random(11)));
    assertEquals(true, again.getDuplicate());
  }
}
