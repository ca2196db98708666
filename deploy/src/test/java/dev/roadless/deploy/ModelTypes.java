package dev.roadless.deploy;

import com.google.gson.annotations.SerializedName;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.util.List;
import java.util.Map;

/**
 * Checks that every value inside a typed model has the Java type its field declares.
 *
 * <p>SnakeYAML fills generic containers by erasure: {@code cpu: [250m]} lands as a list inside the
 * {@code Map<String, Quantity>} of a container's limits, and writing the model back yields the same
 * list, so the round trip alone cannot see it. The API server would refuse it.
 */
final class ModelTypes {
  private static final String MODELS = "io.kubernetes.client.openapi.models";

  private ModelTypes() {}

  /** Adds one line per value whose type does not match its declared field type. */
  static void check(Object value, Type declared, String path, List<String> out) {
    if (value == null) {
      return;
    }
    Class<?> raw = box(rawClass(declared));
    if (!raw.isInstance(value)) {
      out.add(
          path
              + " should be "
              + raw.getSimpleName()
              + " but is "
              + value.getClass().getSimpleName()
              + " "
              + value
              + (raw.getSimpleName().equals("Quantity") ? " (write quantities as strings)" : ""));
      return;
    }
    if (value instanceof Map<?, ?> map && declared instanceof ParameterizedType p) {
      Type valueType = p.getActualTypeArguments()[1];
      map.forEach((k, v) -> check(v, valueType, path + "." + k, out));
    } else if (value instanceof List<?> list && declared instanceof ParameterizedType p) {
      Type elementType = p.getActualTypeArguments()[0];
      for (int i = 0; i < list.size(); i++) {
        check(list.get(i), elementType, path + "[" + i + "]", out);
      }
    } else if (raw.getPackageName().equals(MODELS)) {
      for (Field field : raw.getDeclaredFields()) {
        if (Modifier.isStatic(field.getModifiers())) {
          continue;
        }
        SerializedName name = field.getAnnotation(SerializedName.class);
        String child = path + "." + (name == null ? field.getName() : name.value());
        check(read(field, value), field.getGenericType(), child, out);
      }
    }
  }

  private static Object read(Field field, Object owner) {
    try {
      field.setAccessible(true);
      return field.get(owner);
    } catch (IllegalAccessException e) {
      throw new IllegalStateException("cannot read " + field, e);
    }
  }

  private static Class<?> rawClass(Type type) {
    if (type instanceof Class<?> c) {
      return c;
    }
    if (type instanceof ParameterizedType p) {
      return (Class<?>) p.getRawType();
    }
    return Object.class;
  }

  private static Class<?> box(Class<?> type) {
    if (!type.isPrimitive()) {
      return type;
    }
    return switch (type.getName()) {
      case "int" -> Integer.class;
      case "long" -> Long.class;
      case "boolean" -> Boolean.class;
      case "double" -> Double.class;
      case "float" -> Float.class;
      default -> type;
    };
  }
}
