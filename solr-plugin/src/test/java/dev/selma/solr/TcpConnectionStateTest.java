package dev.selma.solr;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The kernel's view of real connections on this machine (Linux, as CI). */
class TcpConnectionStateTest {

  @Test
  void anIpv4ConnectionIsEstablishedUntilThePeerClosesIt() throws Exception {
    try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
      assertStates(server, "127.0.0.1");
    }
  }

  @Test
  void anIpv4ClientOfADualStackListenerIsFoundInTheIpv6Table() throws Exception {
    // Bound to the wildcard, the listener is an IPv6 socket; the kernel lists the client as ::ffff:127.0.0.1.
    try (ServerSocket server = new ServerSocket(0, 1)) {
      assertStates(server, "127.0.0.1");
    }
  }

  @Test
  void aResetConnectionIsAbsent() throws Exception {
    try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"));
        Socket client = new Socket("127.0.0.1", server.getLocalPort());
        Socket accepted = server.accept()) {
      TcpConnectionState state = serverSide(accepted);
      assertEquals(TcpConnectionState.ESTABLISHED, state.state());
      client.setSoLinger(true, 0); // close with RST
      client.close();
      awaitState(state, TcpConnectionState.ABSENT);
    }
  }

  @Test
  void hexAddressesAreReadAsTheWordsOfALittleEndianHost() {
    assertEquals("127.0.0.1", TcpConnectionState.address("0100007F").getHostAddress());
    assertEquals("127.0.0.1", TcpConnectionState.address("0000000000000000FFFF00000100007F").getHostAddress());
    assertEquals("0:0:0:0:0:0:0:1", TcpConnectionState.address("00000000000000000000000001000000").getHostAddress());
  }

  @Test
  void addressesThatAreNotLiteralAreRefused() {
    assertTrue(TcpConnectionState.of("localhost", 1, "127.0.0.1", 2).isEmpty());
    assertTrue(TcpConnectionState.of("127.0.0.1", 1, "[::1]", 2).isPresent());
  }

  private static void assertStates(ServerSocket server, String host) throws Exception {
    try (Socket client = new Socket(host, server.getLocalPort()); Socket accepted = server.accept()) {
      TcpConnectionState state = serverSide(accepted);
      assertEquals(TcpConnectionState.ESTABLISHED, state.state());
      client.close();
      awaitState(state, TcpConnectionState.CLOSE_WAIT);
    }
  }

  private static TcpConnectionState serverSide(Socket accepted) {
    InetSocketAddress local = (InetSocketAddress) accepted.getLocalSocketAddress();
    InetSocketAddress remote = (InetSocketAddress) accepted.getRemoteSocketAddress();
    return TcpConnectionState.of(local.getAddress().getHostAddress(), local.getPort(),
        remote.getAddress().getHostAddress(), remote.getPort()).orElseThrow();
  }

  private static void awaitState(TcpConnectionState state, int expected) throws IOException, InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (state.state() != expected && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    assertEquals(expected, state.state());
  }
}
