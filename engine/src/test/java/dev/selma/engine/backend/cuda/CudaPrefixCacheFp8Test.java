package dev.selma.engine.backend.cuda;

import dev.selma.engine.kv.KvPrecision;
import dev.selma.engine.llama.Llama;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;

/**
 * {@link CudaPrefixCacheTest} on fp8 pages: their scales travel with them through sharing, copies on
 * write, the host and disk tiers and document placement ({@code kv_append.cu}).
 */
@Tag("gpu")
class CudaPrefixCacheFp8Test extends CudaPrefixCacheTest {
  @BeforeAll
  static void open() {
    gpu = CudaBackend.open(CudaOptions.defaults().withKvPrecision(KvPrecision.FP8));
    model = new Llama(CONFIG, WEIGHTS, gpu);
  }

  @AfterAll
  static void close() {
    gpu.close();
  }
}
