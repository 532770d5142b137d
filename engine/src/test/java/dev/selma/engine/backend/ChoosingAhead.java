package dev.selma.engine.backend;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;

/**
 * A backend as one that {@linkplain Backend#choosesAhead chooses ahead}, every call going to it: on the
 * CPU, greedy generation then takes the path it takes on a GPU (the step for a chosen token queued
 * before the token is read), which tests compare with the step-by-step path.
 */
public final class ChoosingAhead {
  private ChoosingAhead() {}

  public static Backend of(Backend backend) {
    return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class},
        (proxy, method, args) -> {
          if (method.getName().equals("choosesAhead")) {
            return true;
          }
          try {
            return method.invoke(backend, args);
          } catch (InvocationTargetException e) {
            throw e.getCause();
          }
        });
  }
}
