package dev.selma.solr;

import java.io.IOException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;

/**
 * The state of one TCP connection as the Linux kernel lists it in {@code /proc/net/tcp} and
 * {@code /proc/net/tcp6}: how the server notices that an HTTP/1.1 client closed its connection while
 * its answer is still being generated. Jetty does not read from an HTTP/1.1 connection while its
 * request is being handled, so the client's FIN (or RST) is not seen by Java until the response is
 * written; the kernel knows at once. A connection that the peer closed is in {@code CLOSE_WAIT}; one
 * it reset is gone from the table.
 *
 * <p>A line reads {@code sl local_address rem_address st ...}, addresses as the hex of the kernel's
 * 32-bit words in host byte order and ports as 4 hex digits, e.g. {@code 0100007F:1F90} for
 * 127.0.0.1:8080 on a little-endian machine.
 */
final class TcpConnectionState {
  /** The kernel's TCP states (include/net/tcp_states.h) that this class tells apart. */
  static final int ESTABLISHED = 0x01;

  static final int CLOSE_WAIT = 0x08;

  /** The connection is not in the table (reset, fully closed, or never there). */
  static final int ABSENT = -1;

  private static final List<Path> TABLES = List.of(Path.of("/proc/net/tcp"), Path.of("/proc/net/tcp6"));

  private final List<Path> tables;
  private final InetAddress localAddress;
  private final int localPort;
  private final InetAddress remoteAddress;
  private final int remotePort;

  TcpConnectionState(List<Path> tables, InetAddress localAddress, int localPort, InetAddress remoteAddress,
      int remotePort) {
    this.tables = tables;
    this.localAddress = unmapped(localAddress);
    this.localPort = localPort;
    this.remoteAddress = unmapped(remoteAddress);
    this.remotePort = remotePort;
  }

  /**
   * The server side of the connection between these endpoints (as a servlet request reports them), or
   * empty where the kernel's tables cannot be read (not Linux) or the addresses are not literal.
   */
  static Optional<TcpConnectionState> of(String localAddress, int localPort, String remoteAddress, int remotePort) {
    if (!TABLES.stream().allMatch(Files::isReadable)) {
      return Optional.empty();
    }
    try {
      return Optional.of(new TcpConnectionState(TABLES, literal(localAddress), localPort, literal(remoteAddress),
          remotePort));
    } catch (IllegalArgumentException e) {
      return Optional.empty();
    }
  }

  /** The connection's state now: one of the kernel's state numbers, or {@link #ABSENT}. */
  int state() throws IOException {
    for (Path table : tables) {
      List<String> lines = Files.readAllLines(table);
      for (int i = 1; i < lines.size(); i++) {
        String[] f = lines.get(i).trim().split("\\s+");
        if (f.length > 3 && matches(f[1], localAddress, localPort) && matches(f[2], remoteAddress, remotePort)) {
          return Integer.parseInt(f[3], 16);
        }
      }
    }
    return ABSENT;
  }

  private static boolean matches(String field, InetAddress address, int port) {
    int colon = field.indexOf(':');
    if (colon < 0 || Integer.parseInt(field, colon + 1, field.length(), 16) != port) {
      return false;
    }
    return address.equals(address(field.substring(0, colon)));
  }

  /** The address of a table's hex field: 8 digits for IPv4, 32 for IPv6, each word in host order. */
  static InetAddress address(String hex) {
    byte[] raw = HexFormat.of().parseHex(hex);
    if (ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN) {
      for (int w = 0; w < raw.length; w += 4) {
        byte b0 = raw[w], b1 = raw[w + 1];
        raw[w] = raw[w + 3];
        raw[w + 1] = raw[w + 2];
        raw[w + 2] = b1;
        raw[w + 3] = b0;
      }
    }
    try {
      return unmapped(InetAddress.getByAddress(raw));
    } catch (UnknownHostException e) {
      throw new IllegalArgumentException("not an address: " + hex, e);
    }
  }

  /** An IPv4 client of a dual-stack socket is listed in tcp6 as ::ffff:a.b.c.d; Java reports a.b.c.d. */
  private static InetAddress unmapped(InetAddress a) {
    byte[] b = a.getAddress();
    if (b.length == 16) {
      for (int i = 0; i < 10; i++) {
        if (b[i] != 0) {
          return a;
        }
      }
      if (b[10] == (byte) 0xff && b[11] == (byte) 0xff) {
        try {
          return InetAddress.getByAddress(new byte[] {b[12], b[13], b[14], b[15]});
        } catch (UnknownHostException e) {
          throw new AssertionError(e);
        }
      }
    }
    return a;
  }

  /** A literal address as a servlet reports it; never a name lookup. */
  private static InetAddress literal(String address) {
    String a = address.startsWith("[") && address.endsWith("]") ? address.substring(1, address.length() - 1) : address;
    int zone = a.indexOf('%');
    return InetAddress.ofLiteral(zone < 0 ? a : a.substring(0, zone));
  }
}
