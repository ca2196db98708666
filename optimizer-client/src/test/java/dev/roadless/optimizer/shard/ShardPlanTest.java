package dev.roadless.optimizer.shard;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.Hyperparameters;
import dev.roadless.proto.optimizer.v1.OptimizerVariant;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.RunSpec;
import dev.roadless.proto.optimizer.v1.StepMode;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ShardPlanTest {
  /** The optimizer's rule for tensor names. */
  private static final Pattern TENSOR_NAME = Pattern.compile("[A-Za-z0-9_.:/-]{1,256}");

  /** GPT-2 small's tensors (124M parameters), decay on matrices, none on biases and norms. */
  static RunSpec gpt2Small() {
    Map<String, long[]> t = new LinkedHashMap<>();
    t.put("wte.weight", new long[] {50257, 768});
    t.put("wpe.weight", new long[] {1024, 768});
    for (int b = 0; b < 12; b++) {
      String p = "h." + b + ".";
      t.put(p + "ln_1.weight", new long[] {768});
      t.put(p + "ln_1.bias", new long[] {768});
      t.put(p + "attn.c_attn.weight", new long[] {768, 2304});
      t.put(p + "attn.c_attn.bias", new long[] {2304});
      t.put(p + "attn.c_proj.weight", new long[] {768, 768});
      t.put(p + "attn.c_proj.bias", new long[] {768});
      t.put(p + "ln_2.weight", new long[] {768});
      t.put(p + "ln_2.bias", new long[] {768});
      t.put(p + "mlp.c_fc.weight", new long[] {768, 3072});
      t.put(p + "mlp.c_fc.bias", new long[] {3072});
      t.put(p + "mlp.c_proj.weight", new long[] {3072, 768});
      t.put(p + "mlp.c_proj.bias", new long[] {768});
    }
    t.put("ln_f.weight", new long[] {768});
    t.put("ln_f.bias", new long[] {768});
    return spec(t);
  }

  /** Groups as the trainers write them: matrices decay, the rest does not, in spec order. */
  static RunSpec spec(Map<String, long[]> tensors) {
    RunSpec.Builder b =
        RunSpec.newBuilder()
            .setVariant(OptimizerVariant.OPTIMIZER_VARIANT_ADAMW)
            .setReplicas(2)
            .setMode(StepMode.STEP_MODE_SYNC);
    ParameterGroup.Builder decay =
        ParameterGroup.newBuilder()
            .setName("decay")
            .setHyperparameters(Hyperparameters.newBuilder().setLr(1e-3).setWeightDecay(0.1));
    ParameterGroup.Builder noDecay =
        ParameterGroup.newBuilder()
            .setName("no-decay")
            .setHyperparameters(Hyperparameters.newBuilder().setLr(1e-3));
    tensors.forEach(
        (name, shape) -> {
          TensorDescriptor.Builder d = TensorDescriptor.newBuilder().setName(name);
          for (long dim : shape) {
            d.addShape(dim);
          }
          b.addTensors(d);
          (shape.length > 1 ? decay : noDecay).addTensorNames(name);
        });
    return b.addParameterGroups(decay).addParameterGroups(noDecay).build();
  }

  @ParameterizedTest
  @ValueSource(ints = {2, 3, 4, 5, 8})
  void of_transformerLikeTensors_bytesBalancedWithinTenPercent(int shards) {
    ShardPlan plan = ShardPlan.of(gpt2Small(), shards);
    assertBalanced(plan, 0.10);
    // Small tensors stay whole: only cuts inside large tensors split anything.
    long split =
        plan.shards().stream()
            .flatMap(s -> s.pieces().stream())
            .filter(p -> !p.whole())
            .map(ShardPlan.Piece::tensor)
            .distinct()
            .count();
    assertTrue(split <= shards - 1, split + " tensors split");
  }

  @ParameterizedTest
  @ValueSource(ints = {2, 3, 7})
  void of_hugeEmbedding_isSplitByElementRangeAndBalanced(int shards) {
    Map<String, long[]> t = new LinkedHashMap<>();
    t.put("embed.weight", new long[] {256_000, 1024}); // 262M of 300M
    for (int b = 0; b < 4; b++) {
      t.put("block." + b + ".weight", new long[] {3072, 3072});
      t.put("block." + b + ".bias", new long[] {3072});
    }
    ShardPlan plan = ShardPlan.of(spec(t), shards);
    assertBalanced(plan, 0.05);
    long embedShards =
        plan.shards().stream()
            .filter(s -> s.pieces().stream().anyMatch(p -> p.tensor() == 0))
            .count();
    assertTrue(embedShards >= shards - 1, "embedding on " + embedShards + " shards");
  }

  @Test
  void of_everyShardSpec_isAValidRunCoveringEachTensorOnce() {
    ShardPlan plan = ShardPlan.of(gpt2Small(), 3);
    long[] covered = new long[plan.spec().getTensorsCount()];
    for (ShardPlan.Shard s : plan.shards()) {
      RunSpec sub = s.spec();
      assertEquals(s.names(), sub.getTensorsList().stream().map(d -> d.getName()).toList());
      List<String> grouped = new ArrayList<>();
      sub.getParameterGroupsList().forEach(g -> grouped.addAll(g.getTensorNamesList()));
      assertEquals(s.names().size(), grouped.size());
      assertTrue(grouped.containsAll(s.names()));
      for (ShardPlan.Piece p : s.pieces()) {
        assertTrue(TENSOR_NAME.matcher(p.name()).matches(), p.name());
        covered[p.tensor()] += p.length();
      }
      assertEquals(2, sub.getReplicas());
    }
    for (int t = 0; t < covered.length; t++) {
      assertEquals(
          ShardNames.numel(plan.spec().getTensors(t).getShapeList()), covered[t], "tensor " + t);
    }
  }

  @Test
  void of_oneShard_isTheRunItself() {
    RunSpec spec = gpt2Small();
    ShardPlan plan = ShardPlan.of(spec, 1);
    assertSame(spec, plan.shard(0).spec());
    float[][] whole = values(plan);
    assertSame(whole[0], plan.split(whole)[0][0]);
  }

  @Test
  void of_asyncOrTooManyShards_refused() {
    RunSpec async =
        gpt2Small().toBuilder().setMode(StepMode.STEP_MODE_ASYNC).setMaxStaleness(2).build();
    assertThrows(IllegalArgumentException.class, () -> ShardPlan.of(async, 2));
    Map<String, long[]> tiny = new LinkedHashMap<>();
    tiny.put("w", new long[] {2});
    assertThrows(IllegalArgumentException.class, () -> ShardPlan.of(spec(tiny), 3));
    assertThrows(IllegalArgumentException.class, () -> ShardPlan.of(spec(tiny), 0));
  }

  @ParameterizedTest
  @ValueSource(ints = {1, 2, 3})
  void splitThenAssemble_givesTheSameBits(int shards) {
    Map<String, long[]> t = new LinkedHashMap<>();
    t.put("a", new long[] {1000});
    t.put("b", new long[] {10, 7});
    t.put("c", new long[] {3});
    t.put("d", new long[] {});
    ShardPlan plan = ShardPlan.of(spec(t), shards);
    float[][] whole = values(plan);
    float[][] back = plan.assemble(plan.split(whole));
    for (int i = 0; i < whole.length; i++) {
      assertArrayEquals(whole[i], back[i]);
    }
  }

  @ParameterizedTest
  @ValueSource(ints = {1, 2, 3, 5})
  void recover_fromShardSpecsAlone_givesTheSamePlan(int shards) {
    ShardPlan plan = ShardPlan.of(gpt2Small(), shards);
    ShardPlan back = ShardPlan.recover(plan.shards().stream().map(ShardPlan.Shard::spec).toList());
    assertEquals(plan.spec(), back.spec());
    for (int s = 0; s < shards; s++) {
      assertEquals(plan.shard(s), back.shard(s));
    }
  }

  @Test
  void recover_shardsOfAnotherPlan_refused() {
    List<RunSpec> specs =
        ShardPlan.of(gpt2Small(), 3).shards().stream().map(ShardPlan.Shard::spec).toList();
    assertThrows(IllegalArgumentException.class, () -> ShardPlan.recover(specs.subList(0, 2)));
  }

  private static void assertBalanced(ShardPlan plan, double tolerance) {
    long max = plan.shards().stream().mapToLong(ShardPlan.Shard::elements).max().orElseThrow();
    long min = plan.shards().stream().mapToLong(ShardPlan.Shard::elements).min().orElseThrow();
    assertTrue(max <= (1 + tolerance) * min, "shards from " + min + " to " + max + " elements");
  }

  private static float[][] values(ShardPlan plan) {
    SplittableRandom r = new SplittableRandom(7);
    float[][] out = new float[plan.spec().getTensorsCount()][];
    for (int t = 0; t < out.length; t++) {
      out[t] = new float[(int) ShardNames.numel(plan.spec().getTensors(t).getShapeList())];
      for (int i = 0; i < out[t].length; i++) {
        out[t][i] = (float) r.nextGaussian();
      }
    }
    return out;
  }
}
