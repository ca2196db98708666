package dev.roadless.trainer.model;

import dev.roadless.trainer.model.LayerSpec.BatchNorm;
import dev.roadless.trainer.model.LayerSpec.Conv2d;
import dev.roadless.trainer.model.LayerSpec.Flatten;
import dev.roadless.trainer.model.LayerSpec.GlobalAvgPool;
import dev.roadless.trainer.model.LayerSpec.Linear;
import dev.roadless.trainer.model.LayerSpec.Relu;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Parses PyTorch-like architecture text: modules separated by {@code ->}, each {@code
 * name=Type(args)} or a bare {@code flatten}. Types and their PyTorch defaults: {@code Linear(in,
 * out, bias=True)}, {@code Conv2d(in, out, kernel_size, stride=1, padding=0, bias=True)}, {@code
 * BatchNorm1d/BatchNorm2d(C, eps=1e-5, momentum=0.1)} ({@code momentum=None} for the cumulative
 * average), {@code ReLU}, {@code AdaptiveAvgPool2d(1)}, {@code Flatten}.
 */
final class ArchitectureParser {
  private static final Pattern MODULE =
      Pattern.compile(
          "\\s*(?:([A-Za-z_][A-Za-z0-9_]*)\\s*=\\s*)?([A-Za-z0-9_]+)\\s*(?:\\((.*)\\))?\\s*");

  private ArchitectureParser() {}

  static List<LayerSpec> parse(String text) {
    List<LayerSpec> layers = new ArrayList<>();
    for (String part : text.split("->")) {
      Matcher m = MODULE.matcher(part);
      if (!m.matches()) {
        throw new IllegalArgumentException("cannot parse module '" + part.trim() + "'");
      }
      String type = m.group(2);
      String name = m.group(1) != null ? m.group(1) : type.toLowerCase();
      layers.add(module(name, type, Args.parse(m.group(3) == null ? "" : m.group(3), part)));
    }
    return layers;
  }

  private static LayerSpec module(String name, String type, Args a) {
    LayerSpec layer =
        switch (type) {
          case "Linear" ->
              new Linear(
                  name,
                  a.intAt(0, "in_features"),
                  a.intAt(1, "out_features"),
                  a.bool("bias", true));
          case "Conv2d" -> conv(name, a);
          case "BatchNorm1d", "BatchNorm2d" ->
              new BatchNorm(
                  name,
                  a.intAt(0, "num_features"),
                  a.dbl("eps", ModelSpec.DEFAULT_BN_EPS),
                  a.momentum());
          case "ReLU", "relu" -> new Relu(name);
          case "AdaptiveAvgPool2d" -> {
            if (a.intAt(0, "output_size") != 1) {
              throw new IllegalArgumentException(name + ": only AdaptiveAvgPool2d(1) is supported");
            }
            yield new GlobalAvgPool(name);
          }
          case "Flatten", "flatten" -> new Flatten(name);
          default -> throw new IllegalArgumentException("unsupported module type " + type);
        };
    a.requireAllUsed(name);
    return layer;
  }

  private static Conv2d conv(String name, Args a) {
    return new Conv2d(
        name,
        a.intAt(0, "in_channels"),
        a.intAt(1, "out_channels"),
        a.intAt(2, "kernel_size"),
        a.intOr(3, "stride", 1),
        a.intOr(4, "padding", 0),
        a.bool("bias", true));
  }

  /** Positional and keyword arguments of one module. */
  private static final class Args {
    private final List<String> positional = new ArrayList<>();
    private final Map<String, String> keywords = new HashMap<>();
    private final java.util.Set<String> used = new java.util.HashSet<>();
    private final String source;

    private Args(String source) {
      this.source = source.trim();
    }

    static Args parse(String text, String source) {
      Args a = new Args(source);
      if (text.isBlank()) {
        return a;
      }
      for (String item : text.split(",")) {
        String t = item.trim();
        int eq = t.indexOf('=');
        if (eq < 0) {
          if (!a.keywords.isEmpty()) {
            throw new IllegalArgumentException("positional after keyword in '" + a.source + "'");
          }
          a.positional.add(t);
        } else {
          a.keywords.put(t.substring(0, eq).trim(), t.substring(eq + 1).trim());
        }
      }
      return a;
    }

    private String raw(int index, String key) {
      if (index < positional.size()) {
        used.add("#" + index);
        return positional.get(index);
      }
      used.add(key);
      return keywords.get(key);
    }

    int intAt(int index, String key) {
      String v = raw(index, key);
      if (v == null) {
        throw new IllegalArgumentException("'" + source + "' lacks " + key);
      }
      return Integer.parseInt(v);
    }

    int intOr(int index, String key, int fallback) {
      String v = raw(index, key);
      return v == null ? fallback : Integer.parseInt(v);
    }

    double dbl(String key, double fallback) {
      used.add(key);
      String v = keywords.get(key);
      return v == null ? fallback : Double.parseDouble(v);
    }

    boolean bool(String key, boolean fallback) {
      used.add(key);
      String v = keywords.get(key);
      if (v == null) {
        return fallback;
      }
      if (!v.equals("True") && !v.equals("False")) {
        throw new IllegalArgumentException("'" + source + "': " + key + " must be True or False");
      }
      return v.equals("True");
    }

    Double momentum() {
      used.add("momentum");
      String v = keywords.get("momentum");
      if (v == null) {
        return 0.1;
      }
      return v.equals("None") ? null : Double.valueOf(v);
    }

    void requireAllUsed(String name) {
      for (int i = 0; i < positional.size(); i++) {
        if (!used.contains("#" + i)) {
          throw new IllegalArgumentException(name + ": unexpected argument " + positional.get(i));
        }
      }
      for (String k : keywords.keySet()) {
        if (!used.contains(k)) {
          throw new IllegalArgumentException(name + ": unsupported argument " + k);
        }
      }
    }
  }
}
