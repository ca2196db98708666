package dev.roadless.trainer.golden;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.LinkedHashMap;
import java.util.Map;

/** Reads golden tensors: {@code {"shape": [...], "values"|"int_values": [...]}}, row-major. */
public final class Tensors {
  private Tensors() {}

  public static float[] floats(JsonNode tensor) {
    JsonNode v = require(tensor, "values");
    float[] out = new float[v.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = (float) v.get(i).asDouble(); // exact: the decimals are float32 values
    }
    checkCount(tensor, out.length);
    return out;
  }

  public static int[] ints(JsonNode tensor) {
    JsonNode v = require(tensor, "int_values");
    int[] out = new int[v.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = Math.toIntExact(v.get(i).asLong());
    }
    checkCount(tensor, out.length);
    return out;
  }

  public static int[] shape(JsonNode tensor) {
    JsonNode s = require(tensor, "shape");
    int[] out = new int[s.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = s.get(i).asInt();
    }
    return out;
  }

  /** An object of named tensors (params, grads, ...) as float arrays, in file order. */
  public static Map<String, float[]> floatMap(JsonNode object) {
    Map<String, float[]> out = new LinkedHashMap<>();
    object.properties().forEach(e -> out.put(e.getKey(), floats(e.getValue())));
    return out;
  }

  /** Flat index lists (batch indices) as int arrays. */
  public static int[] intList(JsonNode array) {
    int[] out = new int[array.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = array.get(i).asInt();
    }
    return out;
  }

  private static JsonNode require(JsonNode n, String field) {
    JsonNode v = n.get(field);
    if (v == null || !v.isArray()) {
      throw new IllegalArgumentException("tensor lacks '" + field + "': " + n);
    }
    return v;
  }

  private static void checkCount(JsonNode tensor, int count) {
    long expected = 1;
    for (int d : shape(tensor)) {
      expected *= d;
    }
    if (expected != count) {
      throw new IllegalArgumentException("shape/value count mismatch in " + tensor.get("shape"));
    }
  }
}
