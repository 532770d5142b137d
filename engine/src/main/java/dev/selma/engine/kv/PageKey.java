package dev.selma.engine.kv;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * The identity of a cached page: the first 128 bits of a SHA-256 over its parent page's key and its
 * token ids. The chain starts at a root key that hashes the namespace (model, page format, attention
 * configuration), so a key stands for every token from the start of the sequence and for everything
 * the keys and values of those tokens depend on. A 128-bit cryptographic hash makes two different
 * chains meeting on one key implausible (birthday bound 2^64), which is what "exact reuse" rests on.
 */
public record PageKey(long high, long low) {
  private static final HexFormat HEX = HexFormat.of();

  /** The root of every chain in {@code namespace}. */
  public static PageKey root(String namespace) {
    MessageDigest sha = sha256();
    sha.update("selma-kv-root\0".getBytes(StandardCharsets.UTF_8));
    sha.update(namespace.getBytes(StandardCharsets.UTF_8));
    return of(sha.digest());
  }

  /** The key of the page holding {@code tokens[from, from + count)} after this page. */
  public PageKey child(int[] tokens, int from, int count) {
    ByteBuffer b = ByteBuffer.allocate(16 + 4 * count).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(high).putLong(low);
    for (int i = from; i < from + count; i++) {
      b.putInt(tokens[i]);
    }
    return of(sha256().digest(b.array()));
  }

  /** 32 lowercase hex digits, as page files are named. */
  public String hex() {
    return HEX.toHexDigits(high) + HEX.toHexDigits(low);
  }

  /** The key {@link #hex()} wrote, or null if {@code s} is not 32 hex digits. */
  public static PageKey parseHex(String s) {
    if (s.length() != 32 || !s.chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
      return null;
    }
    return new PageKey(HexFormat.fromHexDigitsToLong(s, 0, 16), HexFormat.fromHexDigitsToLong(s, 16, 32));
  }

  private static PageKey of(byte[] digest) {
    ByteBuffer b = ByteBuffer.wrap(digest);
    return new PageKey(b.getLong(), b.getLong());
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java platform provides SHA-256", e);
    }
  }
}
