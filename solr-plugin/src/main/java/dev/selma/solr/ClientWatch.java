package dev.selma.solr;

import java.lang.reflect.Method;
import java.util.function.BooleanSupplier;
import javax.servlet.ServletRequest;
import javax.servlet.ServletRequestWrapper;
import org.apache.solr.request.SolrQueryRequest;
import org.apache.solr.servlet.HttpSolrCall;

/**
 * Tells whether the client of a request has gone away, so that its generation can stop. The servlet
 * API cannot tell, so this asks Jetty, by reflection (Solr's web application may not see Jetty's server
 * classes): the request's HTTP/2 stream was reset by the client (SolrJ's default client speaks HTTP/2;
 * aborting a request resets its stream), or the connection's end point is closed. Jetty does not read
 * an HTTP/1.1 connection while its request is being handled, so a closed HTTP/1.1 connection goes
 * unnoticed until the response is written; there, and where nothing of the above is reachable
 * (embedded Solr, another container), the per-request time limit bounds the work.
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
    } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
      return NEVER;
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
