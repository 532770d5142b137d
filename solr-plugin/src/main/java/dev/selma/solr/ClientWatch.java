package dev.selma.solr;

import java.io.IOException;
import java.lang.reflect.Method;
import java.util.function.BooleanSupplier;
import javax.servlet.ServletRequest;
import javax.servlet.ServletRequestWrapper;
import org.apache.solr.request.SolrQueryRequest;
import org.apache.solr.servlet.HttpSolrCall;

/**
 * Tells whether the client of a request has gone away, so that its generation can stop. The servlet
 * API cannot tell. Over HTTP/2 this asks Jetty, by reflection (Solr's web application may not see
 * Jetty's server classes), whether the client reset the request's stream (SolrJ's default client
 * speaks HTTP/2; aborting a request resets its stream) or the connection's end point is closed. Jetty
 * does not read an HTTP/1.1 connection while its request is being handled, so there it asks the
 * kernel for the connection's TCP state ({@link TcpConnectionState}, Linux). Where neither is
 * reachable (another operating system, embedded Solr, a proxy that rewrites the client's address),
 * the per-request time limit bounds the work.
 */
final class ClientWatch {
  private ClientWatch() {}

  static final BooleanSupplier NEVER = () -> false;

  static BooleanSupplier of(SolrQueryRequest req) {
    try {
      HttpSolrCall call = req.getHttpSolrCall();
      if (call == null || call.getReq() == null) {
        return NEVER;
      }
      ServletRequest r = call.getReq();
      while (r instanceof ServletRequestWrapper w) {
        r = w.getRequest();
      }
      if (r.getProtocol() != null && r.getProtocol().startsWith("HTTP/1")) {
        return http1(r);
      }
      Object channel = invoke(r, "getHttpChannel");
      if (channel == null) {
        return NEVER;
      }
      Object endPoint = invoke(channel, "getEndPoint");
      Method isOpen = endPoint == null ? null : endPoint.getClass().getMethod("isOpen");
      Object transport = invoke(channel, "getHttpTransport");
      Object stream = transport == null ? null : invoke(transport, "getStream");
      Method isReset = stream == null ? null : stream.getClass().getMethod("isReset");
      return () -> {
        try {
          if (isOpen != null && !(Boolean) isOpen.invoke(endPoint)) {
            return true;
          }
          return isReset != null && (Boolean) isReset.invoke(stream);
        } catch (ReflectiveOperationException | RuntimeException e) {
          return false;
        }
      };
    } catch (ReflectiveOperationException | IOException | RuntimeException | LinkageError e) {
      return NEVER;
    }
  }

  private static BooleanSupplier http1(ServletRequest r) throws IOException {
    TcpConnectionState tcp = TcpConnectionState.of(r.getLocalAddr(), r.getLocalPort(), r.getRemoteAddr(),
        r.getRemotePort()).orElse(null);
    if (tcp == null || tcp.state() == TcpConnectionState.ABSENT) {
      return NEVER; // not a connection the kernel lists (e.g. the address came from a proxy header)
    }
    return new Http1Watch(tcp);
  }

  /**
   * Gone once the server's side of the connection leaves ESTABLISHED. The kernel's table lists every
   * connection of the node, so it is read at most every half second.
   */
  private static final class Http1Watch implements BooleanSupplier {
    private static final long PERIOD_NANOS = 500_000_000L;
    private final TcpConnectionState tcp;
    private long next = System.nanoTime();
    private boolean gone;

    Http1Watch(TcpConnectionState tcp) {
      this.tcp = tcp;
    }

    @Override
    public synchronized boolean getAsBoolean() {
      if (!gone && System.nanoTime() - next >= 0) {
        next = System.nanoTime() + PERIOD_NANOS;
        try {
          gone = tcp.state() != TcpConnectionState.ESTABLISHED;
        } catch (IOException | RuntimeException e) {
          return false; // an unreadable table says nothing about the client
        }
      }
      return gone;
    }
  }

  private static Object invoke(Object target, String method) throws ReflectiveOperationException {
    try {
      Method m = target.getClass().getMethod(method);
      return m.invoke(target);
    } catch (NoSuchMethodException e) {
      return null;
    }
  }
}
