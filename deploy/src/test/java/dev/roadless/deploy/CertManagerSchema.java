package dev.roadless.deploy;

import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The part of cert-manager's {@code cert-manager.io/v1} CRD schemas (Issuer, ClusterIssuer,
 * Certificate) that Roadless's manifests may use, checked offline as strictly as {@link StrictYaml}
 * checks the built-in kinds: no unknown field, every value of its declared type or enum, required
 * fields present. client-java has no models for these kinds. A field cert-manager knows but that is
 * not listed here is refused too: add it here (from the CRD) when a manifest needs it.
 */
final class CertManagerSchema {
  static final String API_VERSION = "cert-manager.io/v1";

  /** A schema node; {@link #check} adds one line per problem below {@code path}. */
  private interface Node {
    void check(Object value, String path, List<String> out);
  }

  private record Obj(Map<String, Node> fields, Set<String> required) implements Node {
    @Override
    public void check(Object value, String path, List<String> out) {
      if (!(value instanceof Map<?, ?> map)) {
        out.add(path + " should be an object but is " + value);
        return;
      }
      for (String r : required) {
        if (!map.containsKey(r)) {
          out.add(path + "." + r + " is required");
        }
      }
      map.forEach(
          (k, v) -> {
            Node node = fields.get(String.valueOf(k));
            if (node == null) {
              out.add(path + "." + k + " is not a field of the schema");
            } else {
              node.check(v, path + "." + k, out);
            }
          });
    }
  }

  private record ListOf(Node element) implements Node {
    @Override
    public void check(Object value, String path, List<String> out) {
      if (!(value instanceof List<?> list)) {
        out.add(path + " should be a list but is " + value);
        return;
      }
      for (int i = 0; i < list.size(); i++) {
        element.check(list.get(i), path + "[" + i + "]", out);
      }
    }
  }

  private record Scalar(Class<?> type, Pattern pattern, Set<String> values) implements Node {
    @Override
    public void check(Object value, String path, List<String> out) {
      if (!type.isInstance(value)) {
        out.add(path + " should be " + type.getSimpleName() + " but is " + value);
      } else if (values != null && !values.contains(value)) {
        out.add(path + " must be one of " + values + " but is " + value);
      } else if (pattern != null && !pattern.matcher(value.toString()).matches()) {
        out.add(path + " '" + value + "' does not match " + pattern);
      }
    }
  }

  private static final Node STRING = new Scalar(String.class, null, null);
  private static final Node INT = new Scalar(Integer.class, null, null);
  private static final Node BOOL = new Scalar(Boolean.class, null, null);
  private static final Node STRINGS = new ListOf(STRING);
  private static final Node STRING_MAP =
      (v, p, out) -> {
        if (!(v instanceof Map<?, ?> m)) {
          out.add(p + " should be a map of strings but is " + v);
        } else {
          m.forEach((k, x) -> STRING.check(x, p + "." + k, out));
        }
      };
  private static final Node DURATION =
      new Scalar(String.class, Pattern.compile("([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+"), null);

  private static Node oneOf(String... values) {
    return new Scalar(String.class, null, Set.of(values));
  }

  private static Obj obj(Set<String> required, Object... namesAndNodes) {
    Map<String, Node> fields = new java.util.LinkedHashMap<>();
    for (int i = 0; i < namesAndNodes.length; i += 2) {
      fields.put((String) namesAndNodes[i], (Node) namesAndNodes[i + 1]);
    }
    return new Obj(Map.copyOf(fields), required);
  }

  private static final Node USAGE =
      oneOf(
          "signing",
          "digital signature",
          "content commitment",
          "key encipherment",
          "key agreement",
          "data encipherment",
          "cert sign",
          "crl sign",
          "encipher only",
          "decipher only",
          "any",
          "server auth",
          "client auth",
          "code signing",
          "email protection",
          "s/mime",
          "ipsec end system",
          "ipsec tunnel",
          "ipsec user",
          "timestamping",
          "ocsp signing",
          "microsoft sgc",
          "netscape sgc");

  private static final Obj METADATA =
      obj(
          Set.of("name"),
          "name",
          STRING,
          "namespace",
          STRING,
          "labels",
          STRING_MAP,
          "annotations",
          STRING_MAP);

  private static final Obj ISSUER_SPEC =
      obj(
          Set.of(),
          "ca",
          obj(
              Set.of("secretName"),
              "secretName",
              STRING,
              "crlDistributionPoints",
              STRINGS,
              "ocspServers",
              STRINGS,
              "issuingCertificateURLs",
              STRINGS),
          "selfSigned",
          obj(Set.of(), "crlDistributionPoints", STRINGS));

  private static final Obj SUBJECT =
      obj(
          Set.of(),
          "organizations",
          STRINGS,
          "countries",
          STRINGS,
          "organizationalUnits",
          STRINGS,
          "localities",
          STRINGS,
          "provinces",
          STRINGS,
          "streetAddresses",
          STRINGS,
          "postalCodes",
          STRINGS,
          "serialNumber",
          STRING);

  private static final Obj CERTIFICATE_SPEC =
      obj(
          Set.of("secretName", "issuerRef"),
          "secretName",
          STRING,
          "issuerRef",
          obj(Set.of("name"), "name", STRING, "kind", STRING, "group", STRING),
          "commonName",
          STRING,
          "dnsNames",
          STRINGS,
          "ipAddresses",
          STRINGS,
          "uris",
          STRINGS,
          "emailAddresses",
          STRINGS,
          "usages",
          new ListOf(USAGE),
          "duration",
          DURATION,
          "renewBefore",
          DURATION,
          "isCA",
          BOOL,
          "revisionHistoryLimit",
          INT,
          "subject",
          SUBJECT,
          "secretTemplate",
          obj(Set.of(), "labels", STRING_MAP, "annotations", STRING_MAP),
          "privateKey",
          obj(
              Set.of(),
              "algorithm",
              oneOf("RSA", "ECDSA", "Ed25519"),
              "size",
              INT,
              "encoding",
              oneOf("PKCS1", "PKCS8"),
              "rotationPolicy",
              oneOf("Never", "Always")));

  private static final Map<String, Node> KINDS =
      Map.of(
          "Issuer",
              obj(
                  Set.of("apiVersion", "kind", "metadata", "spec"),
                  "apiVersion",
                  STRING,
                  "kind",
                  STRING,
                  "metadata",
                  METADATA,
                  "spec",
                  ISSUER_SPEC),
          "ClusterIssuer",
              obj(
                  Set.of("apiVersion", "kind", "metadata", "spec"),
                  "apiVersion",
                  STRING,
                  "kind",
                  STRING,
                  "metadata",
                  METADATA,
                  "spec",
                  ISSUER_SPEC),
          "Certificate",
              obj(
                  Set.of("apiVersion", "kind", "metadata", "spec"),
                  "apiVersion",
                  STRING,
                  "kind",
                  STRING,
                  "metadata",
                  METADATA,
                  "spec",
                  CERTIFICATE_SPEC));

  private CertManagerSchema() {}

  /** Whether this document is one of cert-manager's kinds (by its apiVersion's group). */
  static boolean covers(Map<String, Object> tree) {
    return String.valueOf(tree.get("apiVersion")).startsWith("cert-manager.io/");
  }

  /** Throws {@link ManifestException} listing every problem of this cert-manager document. */
  static void check(Map<String, Object> tree) {
    Object kind = tree.get("kind");
    Node schema = KINDS.get(String.valueOf(kind));
    if (!API_VERSION.equals(tree.get("apiVersion")) || schema == null) {
      throw new ManifestException(
          "unknown kind " + tree.get("apiVersion") + " " + kind + ": no schema for it");
    }
    List<String> out = new java.util.ArrayList<>();
    schema.check(tree, String.valueOf(kind), out);
    if (!out.isEmpty()) {
      Object meta = tree.get("metadata");
      Object name = meta instanceof Map<?, ?> m ? m.get("name") : null;
      throw new ManifestException(
          kind + " " + name + " does not fit cert-manager's schema: " + String.join("; ", out));
    }
  }
}
