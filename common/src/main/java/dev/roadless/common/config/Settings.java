package dev.roadless.common.config;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Flags and environment variables under the same names: {@code --snapshot-dir} is also {@code
 * ROADLESS_SNAPSHOT_DIR}. Unknown flags and out-of-range values are refused at start-up with a
 * message that names the key.
 */
public final class Settings {
  /** One configuration key. Integer keys carry an inclusive range. */
  public record Key(
      String name, String defaultValue, long min, long max, boolean numeric, String doc) {
    public static Key integer(String name, String def, long min, long max, String doc) {
      return new Key(name, def, min, max, true, doc);
    }

    public static Key text(String name, String def, String doc) {
      return new Key(name, def, 0, 0, false, doc);
    }

    /** The environment variable that sets this key. */
    public String envName() {
      return "ROADLESS_" + name.replace('-', '_').toUpperCase(Locale.ROOT);
    }
  }

  private final Map<String, String> values;

  private Settings(Map<String, String> values) {
    this.values = values;
  }

  public static Settings parse(List<Key> keys, String[] args, Map<String, String> env) {
    Map<String, Key> byName = new HashMap<>();
    Map<String, String> values = new HashMap<>();
    for (Key key : keys) {
      byName.put(key.name(), key);
      values.put(key.name(), env.getOrDefault(key.envName(), key.defaultValue()));
    }
    for (String arg : args) {
      if (!arg.startsWith("--") || !arg.contains("=")) {
        throw new IllegalArgumentException("expected --key=value, got '" + arg + "'");
      }
      String name = arg.substring(2, arg.indexOf('='));
      if (!byName.containsKey(name)) {
        throw new IllegalArgumentException(
            "unknown flag --" + name + "; known: " + byName.keySet());
      }
      values.put(name, arg.substring(arg.indexOf('=') + 1));
    }
    for (Key key : keys) {
      if (key.numeric()) {
        long v;
        try {
          v = Long.parseLong(values.get(key.name()).trim());
        } catch (NumberFormatException e) {
          throw new IllegalArgumentException(
              key.name()
                  + " ("
                  + key.envName()
                  + ") must be an integer, got '"
                  + values.get(key.name())
                  + "'");
        }
        if (v < key.min() || v > key.max()) {
          throw new IllegalArgumentException(
              key.name()
                  + " ("
                  + key.envName()
                  + ") must be in ["
                  + key.min()
                  + ", "
                  + key.max()
                  + "], got "
                  + v);
        }
      }
    }
    return new Settings(values);
  }

  public int integer(String name) {
    return Math.toIntExact(Long.parseLong(values.get(name).trim()));
  }

  public String text(String name) {
    return values.get(name);
  }

  /** A path, or null when the value is empty. */
  public Path path(String name) {
    String v = values.get(name);
    return v == null || v.isBlank() ? null : Path.of(v);
  }
}
