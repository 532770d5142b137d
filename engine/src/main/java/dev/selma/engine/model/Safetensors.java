package dev.selma.engine.model;

import static dev.selma.engine.model.LittleEndian.LONG;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.channels.FileChannel.MapMode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads safetensors checkpoints, single files or sharded ones, and memory-maps their tensors.
 *
 * <p>A safetensors file is an 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the
 * data section. The JSON object maps each tensor name to {@code {"dtype": "BF16", "shape": [rows,
 * cols], "data_offsets": [begin, end]}} (offsets relative to the data section, shape outermost
 * first, row-major) and may hold a {@code "__metadata__"} object of string values. Sharded
 * checkpoints add {@code model.safetensors.index.json}, whose {@code "weight_map"} maps each tensor
 * name to the shard file (in the same folder) that holds it.
 *
 * <p>Selma reads the float dtypes F32, F16 and BF16. The header length is bounded (100 MB and the
 * file size), the JSON must be well-formed without duplicate keys, and each tensor's offsets must lie
 * inside the data section, match its shape and dtype, and not overlap another tensor; any violation
 * is a {@link ModelFormatException} naming the file, the tensor and the problem. Every shard is
 * validated the same way. Files are mapped read-only into one {@link Arena} that {@link #close()}
 * closes.
 */
public final class Safetensors implements AutoCloseable {
  public static final String SINGLE_FILE = "model.safetensors";
  public static final String INDEX_FILE = "model.safetensors.index.json";
  static final long MAX_HEADER_BYTES = 100_000_000L;
  private static final String METADATA_KEY = "__metadata__";

  static final ObjectMapper JSON = new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

  private final List<Path> files;
  private final Arena arena;
  private final Map<String, Tensor> tensors;
  private final Map<String, String> metadata;

  private Safetensors(List<Path> files, Arena arena, Map<String, Tensor> tensors, Map<String, String> metadata) {
    this.files = List.copyOf(files);
    this.arena = arena;
    this.tensors = Collections.unmodifiableMap(tensors);
    this.metadata = Collections.unmodifiableMap(metadata);
  }

  /**
   * Opens a {@code .safetensors} file, a {@code model.safetensors.index.json}, or a folder holding
   * either (the single file is preferred).
   */
  public static Safetensors open(Path path) throws IOException {
    if (Files.isDirectory(path)) {
      Path single = path.resolve(SINGLE_FILE);
      Path index = path.resolve(INDEX_FILE);
      if (Files.exists(single)) {
        return open(single);
      }
      if (Files.exists(index)) {
        return open(index);
      }
      throw new ModelFormatException(path, null, "neither " + SINGLE_FILE + " nor " + INDEX_FILE + " found");
    }
    Arena arena = Arena.ofShared();
    try {
      if (path.getFileName() != null && path.getFileName().toString().endsWith(".index.json")) {
        return openSharded(path, arena);
      }
      Shard shard = readShard(path, arena);
      return new Safetensors(List.of(path), arena, shard.tensors, shard.metadata);
    } catch (IOException | RuntimeException | Error e) {
      arena.close();
      throw e;
    }
  }

  /** The files read: one, or the shards in the order the index first names them. */
  public List<Path> files() {
    return files;
  }

  /** Tensors by name: file order for a single file, {@code weight_map} order for shards. */
  public Map<String, Tensor> tensors() {
    return tensors;
  }

  public Tensor tensor(String name) throws ModelFormatException {
    Tensor t = tensors.get(name);
    if (t == null) {
      throw new ModelFormatException(files.getFirst(), "tensor '" + name + "'", "missing tensor");
    }
    return t;
  }

  /** The {@code __metadata__} strings (of the first shard for sharded checkpoints). */
  public Map<String, String> metadata() {
    return metadata;
  }

  @Override
  public void close() {
    arena.close();
  }

  private record Shard(Map<String, Tensor> tensors, Map<String, String> metadata) {}

  private static Safetensors openSharded(Path indexFile, Arena arena) throws IOException {
    JsonNode index = readJson(indexFile, Files.readAllBytes(indexFile));
    JsonNode weightMap = index.get("weight_map");
    if (weightMap == null || !weightMap.isObject()) {
      throw new ModelFormatException(indexFile, "weight_map", "missing or not an object");
    }
    Path folder = indexFile.toAbsolutePath().getParent();
    Map<String, Shard> shards = new LinkedHashMap<>();
    List<Path> files = new ArrayList<>();
    Map<String, Tensor> tensors = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> e : weightMap.properties()) {
      String item = "weight_map['" + e.getKey() + "']";
      if (!e.getValue().isTextual()) {
        throw new ModelFormatException(indexFile, item, "shard file name must be a string");
      }
      String shardName = e.getValue().asText();
      if (shardName.isEmpty() || shardName.contains("/") || shardName.contains("\\") || shardName.equals("..")
          || shardName.equals(".")) {
        throw new ModelFormatException(indexFile, item, "'" + shardName + "' is not a file name in the same folder");
      }
      Shard shard = shards.get(shardName);
      if (shard == null) {
        Path shardPath = folder.resolve(shardName);
        if (!Files.isRegularFile(shardPath)) {
          throw new ModelFormatException(indexFile, item, "shard " + shardName + " does not exist");
        }
        shard = readShard(shardPath, arena);
        shards.put(shardName, shard);
        files.add(shardPath);
      }
      Tensor t = shard.tensors.get(e.getKey());
      if (t == null) {
        throw new ModelFormatException(indexFile, item, "tensor is not in shard " + shardName);
      }
      tensors.put(e.getKey(), t);
    }
    if (files.isEmpty()) {
      throw new ModelFormatException(indexFile, "weight_map", "lists no tensors");
    }
    return new Safetensors(files, arena, tensors, shards.values().iterator().next().metadata);
  }

  private static JsonNode readJson(Path file, byte[] bytes) throws ModelFormatException {
    try {
      JsonNode node = JSON.readTree(bytes);
      if (node == null || !node.isObject()) {
        throw new ModelFormatException(file, null, "JSON is not an object");
      }
      return node;
    } catch (JsonProcessingException e) {
      throw new ModelFormatException(file, null, "malformed JSON: " + e.getOriginalMessage(), e);
    } catch (IOException e) {
      throw new ModelFormatException(file, null, "unreadable JSON: " + e.getMessage(), e);
    }
  }

  private record Entry(String name, GgmlType type, long[] shape, long begin, long end) {}

  private static Shard readShard(Path file, Arena arena) throws IOException {
    MemorySegment mapped;
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      mapped = channel.map(MapMode.READ_ONLY, 0, channel.size(), arena);
    }
    long size = mapped.byteSize();
    if (size < 8) {
      throw new ModelFormatException(file, "header", "file of " + size + " bytes has no 8-byte header length");
    }
    long headerLength = mapped.get(LONG, 0);
    if (headerLength < 2 || headerLength > MAX_HEADER_BYTES || headerLength > size - 8) {
      throw new ModelFormatException(file, "header", "header length " + Long.toUnsignedString(headerLength)
          + " is not between 2 and min(" + MAX_HEADER_BYTES + ", file size " + size + " - 8)");
    }
    byte[] headerBytes = mapped.asSlice(8, headerLength).toArray(ValueLayout.JAVA_BYTE);
    JsonNode header = readJson(file, headerBytes);
    long dataStart = 8 + headerLength;
    long dataSize = size - dataStart;

    Map<String, String> metadata = new LinkedHashMap<>();
    List<Entry> entries = new ArrayList<>();
    for (Map.Entry<String, JsonNode> e : header.properties()) {
      if (e.getKey().equals(METADATA_KEY)) {
        readMetadata(file, e.getValue(), metadata);
      } else {
        entries.add(readEntry(file, e.getKey(), e.getValue(), dataSize));
      }
    }
    List<Entry> byOffset = new ArrayList<>(entries);
    byOffset.sort(Comparator.comparingLong(Entry::begin));
    for (int i = 1; i < byOffset.size(); i++) {
      Entry previous = byOffset.get(i - 1);
      Entry current = byOffset.get(i);
      if (current.begin < previous.end) {
        throw new ModelFormatException(file, item(current.name), "data_offsets [" + current.begin + ", "
            + current.end + "] overlap tensor '" + previous.name + "' at [" + previous.begin + ", " + previous.end + "]");
      }
    }
    Map<String, Tensor> tensors = new LinkedHashMap<>();
    for (Entry e : entries) {
      tensors.put(e.name, new Tensor(e.name, e.type, e.shape, mapped.asSlice(dataStart + e.begin, e.end - e.begin)));
    }
    return new Shard(tensors, metadata);
  }

  private static void readMetadata(Path file, JsonNode node, Map<String, String> metadata)
      throws ModelFormatException {
    if (!node.isObject()) {
      throw new ModelFormatException(file, METADATA_KEY, "must be an object of strings");
    }
    for (Map.Entry<String, JsonNode> e : node.properties()) {
      if (!e.getValue().isTextual()) {
        throw new ModelFormatException(file, METADATA_KEY + "['" + e.getKey() + "']", "must be a string");
      }
      metadata.put(e.getKey(), e.getValue().asText());
    }
  }

  private static Entry readEntry(Path file, String name, JsonNode node, long dataSize) throws ModelFormatException {
    String item = item(name);
    if (!node.isObject()) {
      throw new ModelFormatException(file, item, "entry must be an object");
    }
    JsonNode dtype = node.get("dtype");
    if (dtype == null || !dtype.isTextual()) {
      throw new ModelFormatException(file, item, "dtype missing or not a string");
    }
    GgmlType type = switch (dtype.asText()) {
      case "F32" -> GgmlType.F32;
      case "F16" -> GgmlType.F16;
      case "BF16" -> GgmlType.BF16;
      default -> throw new ModelFormatException(file, item, "unsupported dtype " + dtype.asText()
          + "; Selma reads F32, F16, BF16");
    };
    JsonNode shapeNode = node.get("shape");
    if (shapeNode == null || !shapeNode.isArray() || shapeNode.size() > GgufFile.MAX_DIMS) {
      throw new ModelFormatException(file, item, "shape missing, not an array, or of more than "
          + GgufFile.MAX_DIMS + " dimensions");
    }
    long[] shape = new long[shapeNode.size()];
    long elements = 1;
    for (int i = 0; i < shape.length; i++) {
      shape[i] = nonNegativeLong(file, item, "shape", shapeNode.get(i));
      if (shape[i] == 0) {
        throw new ModelFormatException(file, item, "empty tensor (dimension " + i + " is 0)");
      }
      elements = multiply(file, item, elements, shape[i]);
    }
    JsonNode offsets = node.get("data_offsets");
    if (offsets == null || !offsets.isArray() || offsets.size() != 2) {
      throw new ModelFormatException(file, item, "data_offsets must be an array [begin, end]");
    }
    long begin = nonNegativeLong(file, item, "data_offsets", offsets.get(0));
    long end = nonNegativeLong(file, item, "data_offsets", offsets.get(1));
    if (begin > end || end > dataSize) {
      throw new ModelFormatException(file, item, "data_offsets [" + begin + ", " + end
          + "] are not inside the data section of " + dataSize + " bytes");
    }
    long bytes = multiply(file, item, elements, type.blockBytes);
    if (end - begin != bytes) {
      throw new ModelFormatException(file, item, "data_offsets [" + begin + ", " + end + "] hold " + (end - begin)
          + " bytes but " + dtype.asText() + Arrays.toString(shape) + " needs " + bytes);
    }
    return new Entry(name, type, shape, begin, end);
  }

  private static long nonNegativeLong(Path file, String item, String field, JsonNode n) throws ModelFormatException {
    if (n == null || !n.isIntegralNumber() || !n.canConvertToLong() || n.asLong() < 0) {
      throw new ModelFormatException(file, item, field + " must hold non-negative integers, found " + n);
    }
    return n.asLong();
  }

  private static long multiply(Path file, String item, long a, long b) throws ModelFormatException {
    try {
      return Math.multiplyExact(a, b);
    } catch (ArithmeticException e) {
      throw new ModelFormatException(file, item, "size overflows 64 bits");
    }
  }

  private static String item(String name) {
    return "tensor '" + name + "'";
  }
}
