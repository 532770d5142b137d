package dev.selma.engine.model;

/**
 * The tensor element types Selma reads, with their GGUF type ids and block layouts.
 *
 * <p>Quantized types store elements in blocks along a row: {@link #blockSize} elements take {@link
 * #blockBytes} bytes. Layouts follow ggml ({@code ggml-common.h}):
 *
 * <ul>
 *   <li>Q8_0: f16 scale d, then 32 int8 q; x = d·q.
 *   <li>Q4_0: f16 scale d, then 16 bytes; element j (j &lt; 16) is the low nibble of byte j, element
 *       j+16 the high nibble; x = d·(q − 8).
 *   <li>Q4_K: super-block of 256 = 8 sub-blocks of 32; f16 d, f16 dmin, 12 bytes of packed 6-bit
 *       sub-block scales and mins, 128 bytes of nibbles; x = d·sc·q − dmin·m.
 *   <li>Q6_K: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 int8 sub-block scales, f16
 *       d; x = d·sc·(q − 32).
 * </ul>
 */
public enum GgmlType {
  F32(0, 1, 4),
  F16(1, 1, 2),
  Q4_0(2, 32, 18),
  Q8_0(8, 32, 34),
  Q4_K(12, 256, 144),
  Q6_K(14, 256, 210),
  BF16(30, 1, 2);

  /** The type id in GGUF tensor infos. */
  public final int ggufId;
  /** Elements per block (1 for plain float types). */
  public final int blockSize;
  /** Bytes per block. */
  public final int blockBytes;

  GgmlType(int ggufId, int blockSize, int blockBytes) {
    this.ggufId = ggufId;
    this.blockSize = blockSize;
    this.blockBytes = blockBytes;
  }

  public boolean isQuantized() {
    return blockSize > 1;
  }

  /**
   * Bytes taken by {@code elements} elements. The caller must have checked that {@code elements} is
   * a multiple of {@link #blockSize}; see {@link #isValidRowLength(long)}.
   */
  public long bytesFor(long elements) {
    return Math.multiplyExact(elements / blockSize, (long) blockBytes);
  }

  /** Quantized rows must hold whole blocks. */
  public boolean isValidRowLength(long elements) {
    return elements > 0 && elements % blockSize == 0;
  }

  /** The type with this GGUF id, or null when Selma does not support it. */
  public static GgmlType fromGgufId(int id) {
    for (GgmlType t : values()) {
      if (t.ggufId == id) {
        return t;
      }
    }
    return null;
  }
}
