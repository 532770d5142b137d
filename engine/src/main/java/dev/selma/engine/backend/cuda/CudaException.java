package dev.selma.engine.backend.cuda;

/** A CUDA driver or cuBLAS call failed; the message names the call and the CUDA error. */
public class CudaException extends RuntimeException {
  public CudaException(String message) {
    super(message);
  }

  public CudaException(String message, Throwable cause) {
    super(message, cause);
  }
}
