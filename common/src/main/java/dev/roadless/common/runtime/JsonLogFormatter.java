package dev.roadless.common.runtime;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Instant;
import java.util.logging.ConsoleHandler;
import java.util.logging.Formatter;
import java.util.logging.Level;
import java.util.logging.LogManager;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/** One JSON object per log line on stderr: time, level, logger, thread, message, error. */
public final class JsonLogFormatter extends Formatter {

  /**
   * Makes {@link ServiceLogManager} the JDK's LogManager, unless one is configured. Must run before
   * anything creates a Logger (a static block above a main class's logger field), since the JDK
   * reads the property once.
   */
  public static void selectLogManager() {
    if (System.getProperty("java.util.logging.manager") == null) {
      System.setProperty("java.util.logging.manager", ServiceLogManager.class.getName());
    }
  }

  /**
   * Replaces the JDK's default console logging with JSON lines, kept open through shutdown until
   * {@link ServiceLogManager#release}.
   */
  public static void install() {
    LogManager.getLogManager().reset();
    ConsoleHandler handler = new ConsoleHandler();
    handler.setFormatter(new JsonLogFormatter());
    handler.setLevel(Level.ALL);
    Logger root = Logger.getLogger("");
    root.addHandler(handler);
    root.setLevel(Level.INFO);
    ServiceLogManager.hold();
  }

  @Override
  public String format(LogRecord r) {
    StringBuilder sb = new StringBuilder(256).append('{');
    field(sb, "time", Instant.ofEpochMilli(r.getMillis()).toString()).append(',');
    field(sb, "level", r.getLevel().getName()).append(',');
    field(sb, "logger", r.getLoggerName()).append(',');
    field(sb, "thread", Thread.currentThread().getName()).append(',');
    field(sb, "message", formatMessage(r));
    if (r.getThrown() != null) {
      StringWriter trace = new StringWriter();
      r.getThrown().printStackTrace(new PrintWriter(trace));
      sb.append(',');
      field(sb, "error", trace.toString());
    }
    return sb.append("}\n").toString();
  }

  private static StringBuilder field(StringBuilder sb, String key, String value) {
    sb.append('"').append(key).append("\":\"");
    String v = value == null ? "" : value;
    for (int i = 0; i < v.length(); i++) {
      char c = v.charAt(i);
      switch (c) {
        case '"' -> sb.append("\\\"");
        case '\\' -> sb.append("\\\\");
        case '\n' -> sb.append("\\n");
        case '\r' -> sb.append("\\r");
        case '\t' -> sb.append("\\t");
        default -> {
          if (c < 0x20) {
            sb.append(String.format("\\u%04x", (int) c));
          } else {
            sb.append(c);
          }
        }
      }
    }
    return sb.append('"');
  }
}
