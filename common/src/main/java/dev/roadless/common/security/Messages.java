package dev.roadless.common.security;

import com.google.protobuf.Descriptors.EnumValueDescriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/** Reads run ids from requests and filters listings, through the proto descriptor alone. */
final class Messages {
  private Messages() {}

  /**
   * The run ids a request names: its {@code run_id} field and the {@code run_id} of each message it
   * holds one level down (a stream's header in a {@code oneof}). Empty for a message that names no
   * run (a chunk, a commit, or a non-protobuf message such as a zero-copy chunk).
   */
  static List<String> runIds(Object message) {
    List<String> runs = new ArrayList<>(1);
    if (!(message instanceof Message m)) {
      return runs;
    }
    addRunId(m, runs);
    for (var e : m.getAllFields().entrySet()) {
      FieldDescriptor f = e.getKey();
      if (f.getJavaType() == FieldDescriptor.JavaType.MESSAGE && !f.isRepeated()) {
        addRunId((Message) e.getValue(), runs);
      }
    }
    return runs;
  }

  private static void addRunId(Message m, List<String> runs) {
    FieldDescriptor f = m.getDescriptorForType().findFieldByName("run_id");
    if (f != null && f.getJavaType() == FieldDescriptor.JavaType.STRING && !f.isRepeated()) {
      String run = (String) m.getField(f);
      if (!run.isEmpty()) {
        runs.add(run);
      }
    }
  }

  /**
   * Whether the request asks for more than x: a {@code sequence} field other than SEQUENCE_EVAL (y,
   * the train sequence, or z, the base iterate).
   */
  static boolean asksForTrain(Object message) {
    if (!(message instanceof Message m)) {
      return false;
    }
    FieldDescriptor f = m.getDescriptorForType().findFieldByName("sequence");
    return f != null
        && f.getJavaType() == FieldDescriptor.JavaType.ENUM
        && !((EnumValueDescriptor) m.getField(f)).getName().equals("SEQUENCE_EVAL");
  }

  /**
   * A listing with only the entries the caller may see: a repeated string {@code run_ids} keeps the
   * visible runs, a repeated message whose type has a {@code run_id} keeps the visible entries.
   */
  @SuppressWarnings("unchecked")
  static <R> R filter(R response, Predicate<String> visible) {
    if (!(response instanceof Message m)) {
      return response;
    }
    Message.Builder b = null;
    for (FieldDescriptor f : m.getDescriptorForType().getFields()) {
      boolean runIds =
          f.getJavaType() == FieldDescriptor.JavaType.STRING && f.getName().equals("run_ids");
      boolean entries =
          f.getJavaType() == FieldDescriptor.JavaType.MESSAGE
              && f.getMessageType().findFieldByName("run_id") != null;
      if (!f.isRepeated() || !(runIds || entries)) {
        continue;
      }
      b = b == null ? m.toBuilder() : b;
      b.clearField(f);
      for (Object item : (List<?>) m.getField(f)) {
        List<String> own = new ArrayList<>(1);
        if (runIds) {
          own.add((String) item);
        } else {
          addRunId((Message) item, own);
        }
        if (!own.isEmpty() && visible.test(own.get(0))) {
          b.addRepeatedField(f, item);
        }
      }
    }
    return b == null ? response : (R) b.build();
  }
}
