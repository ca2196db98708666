package dev.roadless.optimizer.state;

import dev.roadless.proto.optimizer.v1.ExportStateResponse;
import java.io.IOException;
import java.io.OutputStream;
import java.util.zip.CRC32C;
import java.util.zip.CheckedOutputStream;

/**
 * Writes one state stream in {@link StateCodec}'s form, message by message, so a state of any size
 * streams through a fixed amount of memory. It fills in the end message's checksum itself.
 */
public final class StateWriter {
  private final OutputStream out;
  private final CheckedOutputStream checked;
  private boolean headerWritten;
  private boolean ended;

  StateWriter(OutputStream out) {
    this.out = out;
    this.checked = new CheckedOutputStream(out, new CRC32C());
  }

  /**
   * Appends one message: the header first, then chunks, then the end message (whose {@code crc32c}
   * is replaced by the stream's checksum).
   *
   * @throws IllegalStateException if the messages come out of that order
   */
  public void write(ExportStateResponse message) throws IOException {
    if (ended) {
      throw new IllegalStateException("the state stream has already ended");
    }
    switch (message.getItemCase()) {
      case HEADER -> {
        if (headerWritten) {
          throw new IllegalStateException("a state stream has one header");
        }
        headerWritten = true;
        message.writeDelimitedTo(checked);
      }
      case CHUNK -> {
        requireHeader();
        message.writeDelimitedTo(checked);
      }
      case END -> {
        requireHeader();
        int crc = (int) checked.getChecksum().getValue();
        ExportStateResponse.newBuilder()
            .setEnd(message.getEnd().toBuilder().setCrc32C(crc))
            .build()
            .writeDelimitedTo(out);
        ended = true;
      }
      default -> throw new IllegalStateException("an empty message in a state stream");
    }
  }

  /** Whether the end message has been written. */
  public boolean ended() {
    return ended;
  }

  private void requireHeader() {
    if (!headerWritten) {
      throw new IllegalStateException("a state stream starts with its header");
    }
  }
}
