package dev.roadless.loadtest;

import java.util.List;
import java.util.Map;

/** A small JSON writer for maps, lists, strings, numbers and booleans (NaN becomes null). */
final class Json {
  private Json() {}

  static String write(Object value) {
    StringBuilder out = new StringBuilder();
    write(value, out, 0);
    return out.append('\n').toString();
  }

  private static void write(Object v, StringBuilder out, int depth) {
    if (v == null) {
      out.append("null");
    } else if (v instanceof String s) {
      string(s, out);
    } else if (v instanceof Boolean b) {
      out.append(b);
    } else if (v instanceof Double d) {
      out.append(d.isNaN() || d.isInfinite() ? "null" : number(d));
    } else if (v instanceof Float f) {
      write(f.doubleValue(), out, depth);
    } else if (v instanceof Number n) {
      out.append(n);
    } else if (v instanceof Map<?, ?> map) {
      out.append('{');
      String sep = "";
      for (Map.Entry<?, ?> e : map.entrySet()) {
        out.append(sep).append('\n').append("  ".repeat(depth + 1));
        string(String.valueOf(e.getKey()), out);
        out.append(": ");
        write(e.getValue(), out, depth + 1);
        sep = ",";
      }
      out.append(map.isEmpty() ? "}" : "\n" + "  ".repeat(depth) + "}");
    } else if (v instanceof List<?> list) {
      out.append('[');
      String sep = "";
      for (Object e : list) {
        out.append(sep);
        write(e, out, depth + 1);
        sep = ", ";
      }
      out.append(']');
    } else {
      throw new IllegalArgumentException("not JSON: " + v.getClass());
    }
  }

  private static String number(double d) {
    if (d == Math.rint(d) && Math.abs(d) < 1e15) {
      return Long.toString((long) d);
    }
    return Double.toString(Math.round(d * 1e6) / 1e6);
  }

  private static void string(String s, StringBuilder out) {
    out.append('"');
    for (char c : s.toCharArray()) {
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\n' -> out.append("\\n");
        default -> {
          if (c < 0x20 || c == '<') {
            out.append(String.format("\\u%04x", (int) c));
          } else {
            out.append(c);
          }
        }
      }
    }
    out.append('"');
  }
}
