package dev.selma.engine.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.selma.engine.EngineOptions.BackendChoice;
import org.junit.jupiter.api.Test;

/** The backend choice, with and without a usable GPU; runs everywhere (the probe answers either way). */
class BackendSelectionTest {
  private static final CudaAvailability GPU = new CudaAvailability(true, "1 CUDA device, driver CUDA 13.0", 13000, 1);
  private static final CudaAvailability OLD_DRIVER = new CudaAvailability(false,
      "the driver supports CUDA 12.4 but Selma's kernels need CUDA 13 (driver 580 or newer)", 12040, 1);
  private static final CudaAvailability NONE = new CudaAvailability(false,
      "no CUDA driver (libcuda.so.1 not found)", 0, 0);

  @Test
  void autoTakesTheGpuWhenUsableAndSaysWhyNotOtherwise() {
    assertTrue(BackendSelection.decide(BackendChoice.AUTO, GPU).cuda());
    BackendSelection old = BackendSelection.decide(BackendChoice.AUTO, OLD_DRIVER);
    assertFalse(old.cuda());
    assertTrue(old.reason().contains("driver 580"), old.reason());
    BackendSelection none = BackendSelection.decide(BackendChoice.AUTO, NONE);
    assertFalse(none.cuda());
    assertTrue(none.reason().contains("libcuda.so.1 not found"), none.reason());
  }

  @Test
  void cudaDemandedWithoutAUsableGpuIsAClearError() {
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> BackendSelection.decide(BackendChoice.CUDA, NONE));
    assertEquals("backend 'cuda' was requested but no CUDA driver (libcuda.so.1 not found)", e.getMessage());
    assertTrue(BackendSelection.decide(BackendChoice.CUDA, GPU).cuda());
  }

  @Test
  void cpuNeverNeedsTheProbe() {
    assertFalse(BackendSelection.decide(BackendChoice.CPU, null).cuda());
  }

  @Test
  void theProbeOfThisMachineAnswersWithAReason() {
    CudaAvailability here = CudaAvailability.probe();
    assertNotNull(here.reason());
    assertFalse(here.reason().isBlank());
    assertEquals(here.usable(), BackendSelection.decide(BackendChoice.AUTO, here).cuda());
    if (!here.usable()) {
      IllegalStateException e = assertThrows(IllegalStateException.class,
          () -> BackendSelection.decide(BackendChoice.CUDA, here));
      assertTrue(e.getMessage().endsWith(here.reason()), e.getMessage());
    }
  }
}
