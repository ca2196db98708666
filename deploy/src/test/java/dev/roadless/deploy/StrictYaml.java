package dev.roadless.deploy;

import io.kubernetes.client.common.KubernetesObject;
import io.kubernetes.client.openapi.JSON;
import io.kubernetes.client.openapi.models.V1ObjectMeta;
import io.kubernetes.client.util.ModelMapper;
import io.kubernetes.client.util.Yaml;
import io.kubernetes.client.util.generic.dynamic.DynamicKubernetesObject;
import java.io.IOException;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.constructor.SafeConstructor;

/**
 * Parses Kubernetes YAML into client-java's typed models and refuses anything the models do not
 * carry: what {@code kubectl apply --validate=strict} would refuse, checked offline.
 *
 * <p>{@link Yaml#loadAll} alone is not strict. It does refuse a misspelled field name, but it maps
 * a kind it does not know to a dynamic object, drops a document that is not a mapping with a log
 * line, turns {@code replicas: "1"} into 1, stores {@code cpu: [250m]} as a list inside a {@code
 * Map<String, Quantity>} and never checks required fields. So, per document:
 *
 * <ol>
 *   <li>the kind must have a model class ({@link ModelMapper});
 *   <li>the document is also read as plain maps and lists, the typed object is written back with
 *       {@link Yaml#dump} and read again, and the two trees must be equal: a field the model
 *       dropped, renamed or converted shows up with its path;
 *   <li>every value must have the Java type its field declares ({@link ModelTypes});
 *   <li>the models' own JSON validation (required fields) must pass.
 * </ol>
 *
 * <p>cert-manager's kinds ({@code cert-manager.io/v1}), which have no model, are checked against
 * {@link CertManagerSchema} instead and kept as dynamic objects.
 *
 * <p>Fields whose Java name differs from the wire name, such as {@code IPBlock.except}, would be
 * refused too; none is used here.
 */
final class StrictYaml {
  private static final String MODELS = "io.kubernetes.client.openapi.models";
  private static final JSON JSON = new JSON();

  private StrictYaml() {}

  /** One parsed document: the typed model and the plain tree it was read from. */
  record Document(KubernetesObject object, Map<String, Object> tree) {
    String describe() {
      var meta = object.getMetadata();
      String ns = meta.getNamespace() == null ? "" : meta.getNamespace() + "/";
      return object.getApiVersion() + " " + object.getKind() + " " + ns + meta.getName();
    }
  }

  /** Parses every document of a multi-document YAML text; throws naming the first problem. */
  static List<Document> parseAll(String yaml) {
    List<Map<String, Object>> trees = plainTrees(yaml);
    for (Map<String, Object> tree : trees) {
      if (CertManagerSchema.covers(tree)) {
        CertManagerSchema.check(tree); // no client-java model: cert-manager's schema, here
      } else {
        requireKnownKind(tree);
      }
    }
    // client-java's loader refuses kinds without a model: give it the other documents only.
    List<Map<String, Object>> modelled =
        trees.stream().filter(t -> !CertManagerSchema.covers(t)).toList();
    String modelledYaml =
        modelled.size() == trees.size()
            ? yaml
            : new org.yaml.snakeyaml.Yaml(new SafeConstructor(new LoaderOptions()))
                .dumpAll(modelled.iterator());
    List<Object> typed = new ArrayList<>();
    try {
      typed.addAll(Yaml.loadAll(modelledYaml));
    } catch (IOException | RuntimeException e) {
      throw locate(modelled, e);
    }
    if (typed.size() != modelled.size()) {
      throw new ManifestException(
          modelled.size() + " documents in the YAML but " + typed.size() + " typed objects");
    }
    for (int i = 0; i < trees.size(); i++) {
      if (CertManagerSchema.covers(trees.get(i))) {
        typed.add(i, null); // keeps the indexes of trees and typed objects equal
      }
    }
    List<Document> documents = new ArrayList<>();
    for (int i = 0; i < trees.size(); i++) {
      if (CertManagerSchema.covers(trees.get(i))) {
        var gson = JSON.getGson();
        var dynamic = new DynamicKubernetesObject(gson.toJsonTree(trees.get(i)).getAsJsonObject());
        dynamic.setMetadata(
            gson.fromJson(gson.toJsonTree(trees.get(i).get("metadata")), V1ObjectMeta.class));
        documents.add(new Document(dynamic, trees.get(i)));
        continue;
      }
      if (!(typed.get(i) instanceof KubernetesObject object)) {
        throw new ManifestException(
            "document " + i + " is not a KubernetesObject: " + typed.get(i));
      }
      Map<String, Object> roundTrip = plainTrees(Yaml.dump(object)).get(0);
      List<String> differences = new ArrayList<>();
      compare("", trees.get(i), roundTrip, differences);
      ModelTypes.check(object, object.getClass(), object.getKind(), differences);
      requireValidJson(object, differences);
      if (!differences.isEmpty()) {
        throw new ManifestException(
            object.getKind()
                + " "
                + object.getMetadata().getName()
                + " does not fit "
                + object.getClass().getSimpleName()
                + ": "
                + String.join("; ", differences));
      }
      documents.add(new Document(object, trees.get(i)));
    }
    return documents;
  }

  /** loadAll says only that something failed: find the document and the innermost cause. */
  private static ManifestException locate(List<Map<String, Object>> trees, Exception whole) {
    var plain = new org.yaml.snakeyaml.Yaml(new SafeConstructor(new LoaderOptions()));
    for (Map<String, Object> tree : trees) {
      try {
        Yaml.load(plain.dump(tree));
      } catch (IOException | RuntimeException e) {
        Object meta = tree.get("metadata");
        Object name = meta instanceof Map<?, ?> m ? m.get("name") : null;
        return new ManifestException(
            tree.get("kind") + " " + name + " is not a Kubernetes model: " + rootCause(e), e);
      }
    }
    return new ManifestException("not a Kubernetes model: " + rootCause(whole), whole);
  }

  private static String rootCause(Throwable e) {
    Throwable root = e;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    String message = String.valueOf(root.getMessage());
    return message.lines().findFirst().orElse(message);
  }

  /** client-java maps kinds it does not know to a dynamic object; here that is an error. */
  private static void requireKnownKind(Map<String, Object> tree) {
    Object apiVersion = tree.get("apiVersion");
    Object kind = tree.get("kind");
    if (!(apiVersion instanceof String a) || !(kind instanceof String k)) {
      throw new ManifestException("document without apiVersion and kind: " + tree.keySet());
    }
    Class<?> model = ModelMapper.getApiTypeClass(a, k);
    if (model == null || !model.getPackageName().equals(MODELS)) {
      throw new ManifestException("unknown kind " + a + " " + k + ": no Kubernetes model for it");
    }
  }

  /** The models' own JSON validation: required fields and field names, as the API checks them. */
  private static void requireValidJson(KubernetesObject object, List<String> differences) {
    try {
      JSON.deserialize(JSON.serialize(object), object.getClass());
    } catch (RuntimeException e) {
      differences.add(e.getMessage());
    }
  }

  @SuppressWarnings("unchecked")
  private static List<Map<String, Object>> plainTrees(String yaml) {
    LoaderOptions options = new LoaderOptions();
    options.setAllowDuplicateKeys(false);
    var snake = new org.yaml.snakeyaml.Yaml(new SafeConstructor(options));
    List<Map<String, Object>> trees = new ArrayList<>();
    int index = 0;
    try {
      for (Object document : snake.loadAll(yaml)) {
        if (document == null) {
          continue;
        }
        if (!(document instanceof Map)) {
          throw new ManifestException("document " + index + " is not a mapping: " + document);
        }
        trees.add((Map<String, Object>) document);
        index++;
      }
    } catch (org.yaml.snakeyaml.error.YAMLException e) {
      throw new ManifestException("YAML does not parse: " + e.getMessage(), e);
    }
    return trees;
  }

  /** Records every path where the model's tree differs from the input tree. */
  private static void compare(String path, Object input, Object model, List<String> out) {
    if (input instanceof Map<?, ?> in) {
      if (!(model instanceof Map<?, ?> mo)) {
        out.add(at(path) + " is a mapping in the input, " + describe(model) + " in the model");
        return;
      }
      for (var entry : in.entrySet()) {
        String child = path.isEmpty() ? "" + entry.getKey() : path + "." + entry.getKey();
        if (!mo.containsKey(entry.getKey())) {
          out.add("unknown field " + child);
        } else {
          compare(child, entry.getValue(), mo.get(entry.getKey()), out);
        }
      }
      for (var entry : mo.entrySet()) {
        Object key = entry.getKey();
        // Models start some maps empty (e.g. metadata.annotations); only content is news.
        if (!in.containsKey(key) && !isEmptyCollection(entry.getValue())) {
          out.add("field " + (path.isEmpty() ? "" : path + ".") + key + " appeared in the model");
        }
      }
    } else if (input instanceof List<?> in) {
      if (in.isEmpty() && model == null) {
        return; // the model writes no empty lists
      }
      if (!(model instanceof List<?> mo) || mo.size() != in.size()) {
        out.add(at(path) + " is a list of " + in.size() + " in the input, " + describe(model));
        return;
      }
      for (int i = 0; i < in.size(); i++) {
        compare(path + "[" + i + "]", in.get(i), mo.get(i), out);
      }
    } else if (!sameScalar(input, model)) {
      out.add(at(path) + " is " + describe(input) + " in the input, " + describe(model));
    }
  }

  private static boolean isEmptyCollection(Object value) {
    return (value instanceof Map<?, ?> m && m.isEmpty())
        || (value instanceof List<?> l && l.isEmpty());
  }

  private static boolean sameScalar(Object input, Object model) {
    if (input instanceof Number a && model instanceof Number b) {
      return new BigDecimal(a.toString()).compareTo(new BigDecimal(b.toString())) == 0;
    }
    return Objects.equals(input, model);
  }

  private static String at(String path) {
    return path.isEmpty() ? "the document" : path;
  }

  private static String describe(Object value) {
    if (value == null) {
      return "absent";
    }
    if (value instanceof String) {
      return "the string '" + value + "'";
    }
    return value.getClass().getSimpleName().toLowerCase(java.util.Locale.ROOT) + " " + value;
  }
}
