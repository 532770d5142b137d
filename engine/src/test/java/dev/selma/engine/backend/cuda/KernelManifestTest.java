package dev.selma.engine.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The committed fatbin was built from the kernel sources as they are: every {@code .cu}/{@code .cuh}
 * under {@code src/main/cuda} has the hash the manifest recorded, and the fatbin the manifest names is
 * the one in the jar. Fails when a kernel changed without {@code tools/build-kernels.sh}.
 */
class KernelManifestTest {
  private static final Path SOURCES = Path.of("src/main/cuda");

  @Test
  void theFatbinMatchesItsSources() throws IOException {
    Map<String, String> recorded = new TreeMap<>(), actual = new TreeMap<>();
    String fatbin = null;
    try (InputStream in = CudaDevice.class.getResourceAsStream("kernels.manifest")) {
      assertNotNull(in, "kernels.manifest is missing: run tools/build-kernels.sh");
      for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
        String[] f = line.split(" ");
        if (f[0].equals("source")) {
          recorded.put(f[1], f[2]);
        } else if (f[0].equals("fatbin")) {
          fatbin = f[2];
        }
      }
    }
    try (Stream<Path> files = Files.list(SOURCES)) {
      for (Path p : files.filter(p -> p.toString().endsWith(".cu") || p.toString().endsWith(".cuh")).toList()) {
        actual.put(p.getFileName().toString(), sha256(Files.readAllBytes(p)));
      }
    }
    assertEquals(recorded, actual, "kernel sources changed since the fatbin was built: run tools/build-kernels.sh");
    try (InputStream in = CudaDevice.class.getResourceAsStream(CudaDevice.FATBIN)) {
      assertNotNull(in, CudaDevice.FATBIN + " is missing: run tools/build-kernels.sh");
      assertEquals(fatbin, sha256(in.readAllBytes()), "the fatbin is not the one the manifest recorded");
    }
  }

  private static String sha256(byte[] data) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }
}
