package dev.roadless.optimizer.shard;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.roadless.proto.common.v1.TensorDescriptor;
import dev.roadless.proto.optimizer.v1.ParameterGroup;
import dev.roadless.proto.optimizer.v1.RunSpec;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The shard plan as a contract between the clients: testdata/shard-plans.json holds run specs
 * (tensor names and shapes, parameter groups), S = 1..8 and the plan {@link ShardPlan} gives for
 * each (every shard's pieces with their {@link ShardNames} names, and its groups). This test fails
 * when the Java plan no longer gives what the file says; the Python client's test_shard_plan.py
 * checks its port, roadless.shard, against the same file. The file is written by this test, never
 * by hand: after a deliberate change of the plan run it with {@code
 * -Droadless.shard.plans.write=true} (and change the Python port to match).
 */
class ShardPlanContractTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int MAX_SHARDS = 8;

  @Test
  void shardPlansFile_isWhatShardPlanGives() throws IOException {
    Path file = Path.of(System.getProperty("roadless.shard.plans", "../testdata/shard-plans.json"));
    String expected = render();
    if (Boolean.getBoolean("roadless.shard.plans.write")) {
      Files.writeString(file, expected, StandardCharsets.UTF_8);
    }
    assertTrue(Files.isRegularFile(file), file + " is missing");
    JsonNode want = JSON.readTree(expected);
    JsonNode got = JSON.readTree(Files.readString(file, StandardCharsets.UTF_8));
    if (!want.equals(got)) {
      fail(
          file
              + " is not what ShardPlan gives ("
              + firstDifference(want.get("cases"), got.get("cases"))
              + "): a change of the plan is a change of the contract with the Python client"
              + " (roadless/shard.py); regenerate with -Droadless.shard.plans.write=true");
    }
  }

  /** Which case (and shard) of the file first differs from the plan, in a few words. */
  private static String firstDifference(JsonNode want, JsonNode got) {
    if (got == null || want.size() != got.size()) {
      return "the plan gives "
          + want.size()
          + " cases, the file has "
          + (got == null ? 0 : got.size());
    }
    for (int i = 0; i < want.size(); i++) {
      JsonNode w = want.get(i);
      JsonNode g = got.get(i);
      if (!w.equals(g)) {
        String where = "case " + w.get("name").asText() + " S=" + w.get("shards").asInt();
        for (int s = 0; s < w.get("plan").size(); s++) {
          if (!w.get("plan").get(s).equals(g.get("plan").get(s))) {
            String shard = w.get("plan").get(s).toString();
            return where
                + ", shard "
                + s
                + ": the plan gives "
                + shard.substring(0, Math.min(300, shard.length()));
          }
        }
        return where;
      }
    }
    return "the header";
  }

  /** The cases: specs that stress the plan, each over S = 1..8 where it has the elements. */
  static Map<String, RunSpec> specs() {
    Map<String, RunSpec> specs = new LinkedHashMap<>();
    specs.put("gpt2-small", ShardPlanTest.gpt2Small());
    Map<String, long[]> embedding = new LinkedHashMap<>();
    embedding.put("embed.weight", new long[] {50000, 64});
    embedding.put("proj.weight", new long[] {64, 64});
    embedding.put("proj.bias", new long[] {64});
    embedding.put("head.weight", new long[] {10, 64});
    specs.put("huge-embedding", ShardPlanTest.spec(embedding));
    Map<String, long[]> odd = new LinkedHashMap<>();
    odd.put("a", new long[] {7});
    odd.put("scalar", new long[] {});
    odd.put("b", new long[] {13, 3});
    odd.put("c.w", new long[] {3, 5, 7});
    odd.put("d", new long[] {1});
    odd.put("e/f:g", new long[] {101});
    odd.put("h", new long[] {2, 1, 11});
    specs.put("odd-sizes", ShardPlanTest.spec(odd));
    Map<String, long[]> tiny = new LinkedHashMap<>();
    tiny.put("p", new long[] {3});
    tiny.put("q", new long[] {2, 2});
    specs.put("tiny", ShardPlanTest.spec(tiny));
    // A cut at the middle of a tensor, as near its lower edge as its upper one (it snaps down),
    // exactly SNAP of a share from both (it snaps), and just beyond (it stays, splitting it).
    specs.put("snap-tie", ShardPlanTest.spec(sizes(495, 10, 495)));
    specs.put("snap-at-limit", ShardPlanTest.spec(sizes(490, 20, 490)));
    specs.put("snap-beyond-limit", ShardPlanTest.spec(sizes(489, 22, 489)));
    Map<String, long[]> mlp = new LinkedHashMap<>();
    mlp.put("0.weight", new long[] {16, 8});
    mlp.put("0.bias", new long[] {16});
    mlp.put("2.weight", new long[] {3, 16});
    mlp.put("2.bias", new long[] {3});
    specs.put("python-test-mlp", ShardPlanTest.spec(mlp));
    return specs;
  }

  /** One-dimensional tensors t0, t1, ... of the given sizes. */
  private static Map<String, long[]> sizes(long... sizes) {
    Map<String, long[]> tensors = new LinkedHashMap<>();
    for (int i = 0; i < sizes.length; i++) {
      tensors.put("t" + i, new long[] {sizes[i]});
    }
    return tensors;
  }

  /** The file: one case per spec and S, one line per shard's piece, so diffs stay readable. */
  static String render() throws IOException {
    StringBuilder out = new StringBuilder();
    out.append("{\"about\": ")
        .append(
            JSON.writeValueAsString(
                "Written by optimizer-client ShardPlanContractTest (never by hand): the plan of"
                    + " each spec over S shards; pieces are [tensor index, from, to, whole, shard"
                    + " tensor name]."))
        .append(",\n \"cases\": [");
    String sep = "\n";
    for (Map.Entry<String, RunSpec> e : specs().entrySet()) {
      RunSpec spec = e.getValue();
      long total = 0;
      for (TensorDescriptor d : spec.getTensorsList()) {
        total += ShardNames.numel(d.getShapeList());
      }
      for (int s = 1; s <= Math.min(MAX_SHARDS, total); s++) {
        out.append(sep).append(renderCase(e.getKey(), spec, ShardPlan.of(spec, s)));
        sep = ",\n";
      }
    }
    return out.append("\n]}\n").toString();
  }

  private static String renderCase(String name, RunSpec spec, ShardPlan plan) throws IOException {
    StringBuilder out = new StringBuilder();
    out.append("  {\"name\": ").append(JSON.writeValueAsString(name));
    out.append(", \"shards\": ").append(plan.size());
    out.append(",\n   \"spec\": ").append(JSON.writeValueAsString(specJson(spec)));
    out.append(",\n   \"plan\": [");
    for (ShardPlan.Shard shard : plan.shards()) {
      out.append(shard.index() == 0 ? "\n    " : ",\n    ");
      out.append("{\"groups\": ").append(JSON.writeValueAsString(groupsJson(shard.spec())));
      out.append(",\n     \"pieces\": [");
      for (int i = 0; i < shard.pieces().size(); i++) {
        ShardPlan.Piece p = shard.pieces().get(i);
        ArrayNode piece = JSON.createArrayNode();
        piece.add(p.tensor()).add(p.from()).add(p.to()).add(p.whole()).add(p.name());
        out.append(i == 0 ? "\n      " : ",\n      ").append(JSON.writeValueAsString(piece));
      }
      out.append("]}");
    }
    return out.append("]}").toString();
  }

  private static ObjectNode specJson(RunSpec spec) {
    ObjectNode node = JSON.createObjectNode();
    ArrayNode tensors = node.putArray("tensors");
    for (TensorDescriptor d : spec.getTensorsList()) {
      ObjectNode t = tensors.addObject().put("name", d.getName());
      ArrayNode shape = t.putArray("shape");
      d.getShapeList().forEach(shape::add);
    }
    node.set("groups", groupsJson(spec));
    return node;
  }

  /** [[group name, [tensor names]]...] in the spec's order. */
  private static ArrayNode groupsJson(RunSpec spec) {
    ArrayNode groups = JSON.createArrayNode();
    for (ParameterGroup g : spec.getParameterGroupsList()) {
      ArrayNode names = JSON.createArrayNode();
      List<String> list = new ArrayList<>(g.getTensorNamesList());
      list.forEach(names::add);
      groups.addArray().add(g.getName()).add(names);
    }
    return groups;
  }
}
