package dev.roadless.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import io.kubernetes.client.common.KubernetesObject;
import io.kubernetes.client.openapi.models.V1ConfigMap;
import io.kubernetes.client.openapi.models.V1Container;
import io.kubernetes.client.openapi.models.V1Deployment;
import io.kubernetes.client.openapi.models.V1EnvFromSource;
import io.kubernetes.client.openapi.models.V1EnvVar;
import io.kubernetes.client.openapi.models.V1Job;
import io.kubernetes.client.openapi.models.V1PodSpec;
import io.kubernetes.client.openapi.models.V1PodTemplateSpec;
import io.kubernetes.client.openapi.models.V1StatefulSet;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** One overlay rendered by kubectl kustomize and parsed strictly, with lookups for the tests. */
final class Overlay {
  /** Every overlay under deploy/k8s/overlays; OverlayRenderTest checks the list is complete. */
  static final List<String> NAMES =
      List.of("cert-manager", "dev", "gpu", "loadtest", "sharded", "sharded-loadtest");

  private static final Map<String, Overlay> RENDERED = new ConcurrentHashMap<>();

  final String name;
  final List<StrictYaml.Document> documents;

  /** Something that runs pods: a Deployment, StatefulSet or Job. */
  record Workload(String kind, String name, String namespace, V1PodTemplateSpec template) {
    @Override
    public String toString() {
      return kind + "/" + name;
    }
  }

  /** A container with the workload that runs it. */
  record Placed(Workload workload, V1Container container) {
    V1PodSpec pod() {
      return workload.template().getSpec();
    }

    @Override
    public String toString() {
      return workload + " container " + container.getName();
    }
  }

  private Overlay(String name, List<StrictYaml.Document> documents) {
    this.name = name;
    this.documents = documents;
  }

  /** Renders (once per test run) and parses an overlay, printing one line per object. */
  static Overlay named(String name) {
    return RENDERED.computeIfAbsent(
        name,
        n -> {
          String yaml = Kustomize.render(Kustomize.k8sDir().resolve("overlays").resolve(n));
          List<StrictYaml.Document> documents = StrictYaml.parseAll(yaml);
          documents.forEach(d -> System.out.println("[" + n + "] " + d.describe()));
          return new Overlay(n, documents);
        });
  }

  List<KubernetesObject> objects() {
    return documents.stream().map(StrictYaml.Document::object).toList();
  }

  <T extends KubernetesObject> List<T> all(Class<T> type) {
    return objects().stream().filter(type::isInstance).map(type::cast).toList();
  }

  <T extends KubernetesObject> T one(Class<T> type, String objectName) {
    List<T> found =
        all(type).stream().filter(o -> objectName.equals(o.getMetadata().getName())).toList();
    assertEquals(1, found.size(), name + ": " + type.getSimpleName() + " " + objectName);
    return found.get(0);
  }

  List<Workload> workloads() {
    List<Workload> workloads = new ArrayList<>();
    for (KubernetesObject o : objects()) {
      var meta = o.getMetadata();
      if (o instanceof V1Deployment d) {
        workloads.add(
            new Workload(
                "Deployment", meta.getName(), meta.getNamespace(), d.getSpec().getTemplate()));
      } else if (o instanceof V1StatefulSet s) {
        workloads.add(
            new Workload(
                "StatefulSet", meta.getName(), meta.getNamespace(), s.getSpec().getTemplate()));
      } else if (o instanceof V1Job j) {
        workloads.add(
            new Workload("Job", meta.getName(), meta.getNamespace(), j.getSpec().getTemplate()));
      }
    }
    return workloads;
  }

  /** Every container (init containers too) of every workload. */
  List<Placed> containers() {
    List<Placed> placed = new ArrayList<>();
    for (Workload w : workloads()) {
      V1PodSpec pod = w.template().getSpec();
      nullToEmpty(pod.getInitContainers()).forEach(c -> placed.add(new Placed(w, c)));
      pod.getContainers().forEach(c -> placed.add(new Placed(w, c)));
    }
    return placed;
  }

  Workload workload(String kind, String workloadName) {
    return workloads().stream()
        .filter(w -> w.kind().equals(kind) && w.name().equals(workloadName))
        .findFirst()
        .orElseThrow(() -> new AssertionError(name + ": no " + kind + " " + workloadName));
  }

  /** The environment a container sees: its envFrom ConfigMaps, then its literal env values. */
  Map<String, String> environment(V1Container container) {
    Map<String, String> env = new LinkedHashMap<>();
    for (V1EnvFromSource source : nullToEmpty(container.getEnvFrom())) {
      assertNotNull(
          source.getConfigMapRef(), container.getName() + ": envFrom only from ConfigMaps");
      String configMap = source.getConfigMapRef().getName();
      env.putAll(one(V1ConfigMap.class, configMap).getData());
    }
    for (V1EnvVar var : nullToEmpty(container.getEnv())) {
      env.put(var.getName(), var.getValue());
    }
    return env;
  }

  static <T> List<T> nullToEmpty(List<T> list) {
    return list == null ? List.of() : list;
  }

  @Override
  public String toString() {
    return name;
  }
}
