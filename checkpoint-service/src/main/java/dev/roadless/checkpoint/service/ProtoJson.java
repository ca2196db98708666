package dev.roadless.checkpoint.service;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.EnumValueDescriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.MessageOrBuilder;
import java.util.Base64;
import java.util.List;
import java.util.Map;

/**
 * Protobuf messages as JSON trees for manifests: the fields that are set (proto field names), enums
 * by name, 64-bit integers as numbers, non-finite doubles as strings ("NaN"), bytes in base64, maps
 * as lists of {key, value}. A small reflection walk, so the service needs no JSON library besides
 * Jackson.
 */
final class ProtoJson {
  private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

  private ProtoJson() {}

  static JsonNode tree(MessageOrBuilder message) {
    ObjectNode out = NODES.objectNode();
    for (Map.Entry<FieldDescriptor, Object> e : message.getAllFields().entrySet()) {
      FieldDescriptor f = e.getKey();
      if (f.isRepeated()) {
        ArrayNode list = out.putArray(f.getName());
        for (Object v : (List<?>) e.getValue()) {
          list.add(value(v));
        }
      } else {
        out.set(f.getName(), value(e.getValue()));
      }
    }
    return out;
  }

  private static JsonNode value(Object v) {
    if (v instanceof MessageOrBuilder m) {
      return tree(m);
    } else if (v instanceof EnumValueDescriptor en) {
      return NODES.textNode(en.getName());
    } else if (v instanceof Double d) {
      return Double.isFinite(d) ? NODES.numberNode(d) : NODES.textNode(d.toString());
    } else if (v instanceof Float f) {
      return Float.isFinite(f) ? NODES.numberNode(f) : NODES.textNode(f.toString());
    } else if (v instanceof Long l) {
      return NODES.numberNode(l);
    } else if (v instanceof Integer i) {
      return NODES.numberNode(i);
    } else if (v instanceof Boolean b) {
      return NODES.booleanNode(b);
    } else if (v instanceof ByteString bytes) {
      return NODES.textNode(Base64.getEncoder().encodeToString(bytes.toByteArray()));
    }
    return NODES.textNode(String.valueOf(v));
  }
}
