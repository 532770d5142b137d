package dev.selma.engine.model;

import static dev.selma.engine.model.LittleEndian.DOUBLE;
import static dev.selma.engine.model.LittleEndian.FLOAT;
import static dev.selma.engine.model.LittleEndian.INT;
import static dev.selma.engine.model.LittleEndian.LONG;
import static dev.selma.engine.model.LittleEndian.SHORT;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;

import dev.selma.engine.model.GgufMetadata.Value;
import dev.selma.engine.model.GgufMetadata.ValueType;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileChannel.MapMode;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Reads a GGUF file (versions 2 and 3) and memory-maps its tensor data.
 *
 * <p>Layout, all little-endian:
 *
 * <pre>
 *   magic "GGUF" | uint32 version | uint64 tensor_count | uint64 metadata_kv_count
 *   metadata_kv_count × (string key | uint32 value_type | value)
 *   tensor_count × (string name | uint32 n_dims | n_dims × uint64 ne | uint32 type | uint64 offset)
 *   padding to general.alignment (default 32) | tensor data
 * </pre>
 *
 * A string is a uint64 byte length followed by UTF-8 bytes (no terminator). A value is a scalar of
 * its type (uint8 … float64, bool as one byte 0 or 1, string), or for ARRAY a uint32 element type,
 * a uint64 count and the elements (arrays of arrays nest). Tensor dimensions {@code ne} are listed
 * innermost first ({@code ne[0]} is the row length); {@link Tensor} wants them outermost first, so
 * they are reversed. {@code offset} is relative to the start of the data section, which begins at the
 * first multiple of the alignment after the tensor infos; every offset must itself be aligned.
 * Version 1 (uint32 counts) is obsolete and rejected; version 3 differs from 2 only in allowing
 * big-endian files, which are rejected.
 *
 * <p>The whole file is mapped read-only into an {@link Arena} that {@link #close()} closes; tensors'
 * {@link Tensor#data() data} are slices of that mapping and become inaccessible after close. Every
 * length, count, type and offset is validated against the file size before it is used, so that a
 * truncated or corrupted file fails with a {@link ModelFormatException} naming the file, the item
 * and the problem, never with an allocation sized by a corrupted count.
 */
public final class GgufFile implements AutoCloseable {
  static final int MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
  static final int DEFAULT_ALIGNMENT = 32;
  static final String ALIGNMENT_KEY = "general.alignment";
  /** Nesting of arrays of arrays; real files use at most 2, and recursion must stay bounded. */
  static final int MAX_ARRAY_DEPTH = 8;
  /** GGML_MAX_DIMS. */
  static final int MAX_DIMS = 4;

  private final Path path;
  private final Arena arena;
  private final int version;
  private final GgufMetadata metadata;
  private final Map<String, Tensor> tensors;
  private final int alignment;
  private final long dataOffset;

  private GgufFile(Path path, Arena arena, int version, GgufMetadata metadata, Map<String, Tensor> tensors,
      int alignment, long dataOffset) {
    this.path = path;
    this.arena = arena;
    this.version = version;
    this.metadata = metadata;
    this.tensors = tensors;
    this.alignment = alignment;
    this.dataOffset = dataOffset;
  }

  /** Opens, validates and maps a GGUF file. */
  public static GgufFile open(Path path) throws IOException {
    Arena arena = Arena.ofShared();
    try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
      long size = channel.size();
      MemorySegment file = channel.map(MapMode.READ_ONLY, 0, size, arena);
      return new Parser(path, file).parse(arena);
    } catch (IOException | RuntimeException | Error e) {
      arena.close();
      throw e;
    }
  }

  public Path path() {
    return path;
  }

  /** 2 or 3. */
  public int version() {
    return version;
  }

  public GgufMetadata metadata() {
    return metadata;
  }

  /** Tensors by name, in file order. */
  public Map<String, Tensor> tensors() {
    return tensors;
  }

  /** The tensor with this name; a {@link ModelFormatException} when there is none. */
  public Tensor tensor(String name) throws ModelFormatException {
    Tensor t = tensors.get(name);
    if (t == null) {
      throw new ModelFormatException(path, "tensor '" + name + "'", "missing tensor");
    }
    return t;
  }

  /** The alignment of tensor data ({@code general.alignment}, default 32). */
  public int alignment() {
    return alignment;
  }

  /** File offset of the data section. */
  public long dataOffset() {
    return dataOffset;
  }

  /** Unmaps the file; tensor data are inaccessible afterwards. */
  @Override
  public void close() {
    arena.close();
  }

  static long alignUp(long offset, long alignment) {
    return (offset + alignment - 1) / alignment * alignment;
  }

  /** Reads the header with a cursor that checks every read against the end of the file. */
  private static final class Parser {
    private final Path path;
    private final MemorySegment file;
    private final long size;
    private long pos;

    Parser(Path path, MemorySegment file) {
      this.path = path;
      this.file = file;
      this.size = file.byteSize();
    }

    GgufFile parse(Arena arena) throws ModelFormatException {
      if (size < 4 || file.get(INT, 0) != MAGIC) {
        throw error("header", "not a GGUF file (magic bytes \"GGUF\" missing)");
      }
      pos = 4;
      int version = readInt("version");
      if (Integer.reverseBytes(version) == 2 || Integer.reverseBytes(version) == 3) {
        throw error("version", "big-endian GGUF files are not supported");
      }
      if (version == 1) {
        throw error("version", "GGUF version 1 is obsolete and not supported; re-convert the model "
            + "with a current llama.cpp (versions 2 and 3 are read)");
      }
      if (version != 2 && version != 3) {
        throw error("version", "unsupported GGUF version " + Integer.toUnsignedString(version)
            + " (versions 2 and 3 are read)");
      }
      long tensorCount = readLong("tensor count");
      long kvCount = readLong("metadata count");
      // Bound counts by what the remaining bytes can hold before sizing anything by them: a key/value
      // takes at least 8 (key length) + 4 (type) + 1 bytes, a tensor info at least 8 + 4 + 4 + 8.
      checkCount("metadata count", kvCount, 13);
      Map<String, Value> values = new LinkedHashMap<>();
      for (long i = 0; i < kvCount; i++) {
        String key = readString("metadata key #" + i);
        if (key.isEmpty()) {
          throw error("metadata key #" + i, "empty key");
        }
        int typeId = readInt(key);
        ValueType type = ValueType.fromId(typeId);
        if (type == null) {
          throw error(key, "unknown value type " + Integer.toUnsignedString(typeId));
        }
        Value value = readValue(key, type, 0);
        if (values.putIfAbsent(key, value) != null) {
          throw error(key, "duplicate metadata key");
        }
      }
      GgufMetadata metadata = new GgufMetadata(path, values);
      int alignment = alignment(metadata);

      checkCount("tensor count", tensorCount, 24);
      List<Info> infos = new ArrayList<>();
      Map<String, Info> byName = new LinkedHashMap<>();
      for (long i = 0; i < tensorCount; i++) {
        Info info = readTensorInfo(i, alignment);
        if (byName.putIfAbsent(info.name, info) != null) {
          throw error(tensorItem(info.name), "duplicate tensor name");
        }
        infos.add(info);
      }
      long dataOffset = alignUp(pos, alignment);
      Map<String, Tensor> tensors = new LinkedHashMap<>();
      if (!infos.isEmpty()) {
        checkPlacement(infos, dataOffset);
        for (Info info : infos) {
          MemorySegment data = file.asSlice(dataOffset + info.offset, info.bytes);
          tensors.put(info.name, new Tensor(info.name, info.type, info.shape, data));
        }
      }
      return new GgufFile(path, arena, version, metadata, Collections.unmodifiableMap(tensors), alignment,
          dataOffset);
    }

    private int alignment(GgufMetadata metadata) throws ModelFormatException {
      Value v = metadata.get(ALIGNMENT_KEY);
      if (v == null) {
        return DEFAULT_ALIGNMENT;
      }
      if (!(v.value() instanceof Long a)) {
        throw error(ALIGNMENT_KEY, "expected an integer but found " + v.type());
      }
      if (a <= 0 || a > (1 << 30) || (a & (a - 1)) != 0) {
        throw error(ALIGNMENT_KEY, "alignment " + a + " is not a power of two between 1 and 2^30");
      }
      return a.intValue();
    }

    private record Info(String name, GgmlType type, long[] shape, long offset, long bytes) {}

    private Info readTensorInfo(long index, int alignment) throws ModelFormatException {
      String name = readString("tensor #" + index + " name");
      String item = tensorItem(name);
      int nDims = readInt(item);
      if (nDims < 0 || nDims > MAX_DIMS) {
        throw error(item, Integer.toUnsignedString(nDims) + " dimensions (at most " + MAX_DIMS + ")");
      }
      long[] shape = new long[nDims];
      long elements = 1;
      for (int d = 0; d < nDims; d++) {
        long ne = readLong(item);
        if (ne <= 0) {
          throw error(item, "dimension " + d + " is " + Long.toUnsignedString(ne) + " (must be > 0)");
        }
        shape[nDims - 1 - d] = ne;
        elements = multiply(item, elements, ne);
      }
      int typeId = readInt(item);
      GgmlType type = GgmlType.fromGgufId(typeId);
      if (type == null) {
        throw error(item, "unsupported type id " + Integer.toUnsignedString(typeId) + typeName(typeId)
            + "; Selma reads " + supportedTypes());
      }
      long rowLength = nDims == 0 ? 1 : shape[nDims - 1];
      if (!type.isValidRowLength(rowLength)) {
        throw error(item, "row length " + rowLength + " is not a multiple of the " + type + " block size "
            + type.blockSize);
      }
      long bytes = multiply(item, elements / type.blockSize, type.blockBytes);
      long offset = readLong(item);
      if (offset < 0 || offset % alignment != 0) {
        throw error(item, "offset " + Long.toUnsignedString(offset) + " is not a multiple of the alignment "
            + alignment);
      }
      return new Info(name, type, shape, offset, bytes);
    }

    /** Tensors must lie inside the data section and not overlap one another. */
    private void checkPlacement(List<Info> infos, long dataOffset) throws ModelFormatException {
      long dataSize = size - dataOffset;
      if (dataSize < 0) {
        throw error("data section", "file ends at " + size + " before the data section at " + dataOffset);
      }
      List<Info> byOffset = new ArrayList<>(infos);
      byOffset.sort(Comparator.comparingLong(Info::offset));
      Info previous = null;
      for (Info info : byOffset) {
        if (info.offset > dataSize || info.bytes > dataSize - info.offset) {
          throw error(tensorItem(info.name), "data [" + info.offset + ", " + (info.offset + info.bytes)
              + ") of the data section extends beyond the end of the file (data section holds " + dataSize
              + " bytes)");
        }
        if (previous != null && previous.offset + previous.bytes > info.offset) {
          throw error(tensorItem(info.name), "data at offset " + info.offset + " overlaps tensor '"
              + previous.name + "' at [" + previous.offset + ", " + (previous.offset + previous.bytes) + ")");
        }
        previous = info;
      }
    }

    private Value readValue(String key, ValueType type, int depth) throws ModelFormatException {
      if (type != ValueType.ARRAY) {
        return new Value(type, type, readScalar(key, type));
      }
      if (depth >= MAX_ARRAY_DEPTH) {
        throw error(key, "arrays nested deeper than " + MAX_ARRAY_DEPTH);
      }
      int elementId = readInt(key);
      ValueType elementType = ValueType.fromId(elementId);
      if (elementType == null) {
        throw error(key, "unknown array element type " + Integer.toUnsignedString(elementId));
      }
      long count = readLong(key);
      checkCount(key, count, minBytes(elementType));
      if (count > Integer.MAX_VALUE - 8) {
        throw error(key, "array of " + count + " elements is too large");
      }
      int n = (int) count;
      Object array = switch (elementType) {
        case UINT8, INT8, UINT16, INT16, UINT32, INT32, UINT64, INT64 -> {
          long[] a = new long[n];
          for (int i = 0; i < n; i++) {
            a[i] = (Long) readScalar(key, elementType);
          }
          yield a;
        }
        case FLOAT32, FLOAT64 -> {
          double[] a = new double[n];
          for (int i = 0; i < n; i++) {
            a[i] = (Double) readScalar(key, elementType);
          }
          yield a;
        }
        case BOOL -> {
          boolean[] a = new boolean[n];
          for (int i = 0; i < n; i++) {
            a[i] = (Boolean) readScalar(key, elementType);
          }
          yield a;
        }
        case STRING -> {
          String[] a = new String[n];
          for (int i = 0; i < n; i++) {
            a[i] = readString(key);
          }
          yield a;
        }
        case ARRAY -> {
          Value[] a = new Value[n];
          for (int i = 0; i < n; i++) {
            a[i] = readValue(key, ValueType.ARRAY, depth + 1);
          }
          yield a;
        }
      };
      return new Value(ValueType.ARRAY, elementType, array);
    }

    private Object readScalar(String key, ValueType type) throws ModelFormatException {
      return switch (type) {
        case UINT8 -> (long) (readByte(key) & 0xFF);
        case INT8 -> (long) readByte(key);
        case UINT16 -> (long) (readShort(key) & 0xFFFF);
        case INT16 -> (long) readShort(key);
        case UINT32 -> Integer.toUnsignedLong(readInt(key));
        case INT32 -> (long) readInt(key);
        case UINT64 -> {
          long v = readLong(key);
          if (v < 0) {
            throw error(key, "uint64 value " + Long.toUnsignedString(v) + " exceeds 2^63 - 1");
          }
          yield v;
        }
        case INT64 -> readLong(key);
        case FLOAT32 -> (double) readFloat(key);
        case FLOAT64 -> readDouble(key);
        case BOOL -> {
          byte b = readByte(key);
          if (b != 0 && b != 1) {
            throw error(key, "bool value " + (b & 0xFF) + " (must be 0 or 1)");
          }
          yield b == 1;
        }
        case STRING -> readString(key);
        case ARRAY -> throw new IllegalArgumentException("arrays are read by readValue");
      };
    }

    /** Fewest bytes an element of this type takes in the file. */
    private static int minBytes(ValueType type) {
      return switch (type) {
        case UINT8, INT8, BOOL -> 1;
        case UINT16, INT16 -> 2;
        case UINT32, INT32, FLOAT32 -> 4;
        case UINT64, INT64, FLOAT64, STRING -> 8;
        case ARRAY -> 12;
      };
    }

    private void checkCount(String item, long count, int minBytesEach) throws ModelFormatException {
      if (count < 0 || count > (size - pos) / minBytesEach) {
        throw error(item, "count " + Long.toUnsignedString(count) + " cannot fit in the remaining "
            + (size - pos) + " bytes of the file");
      }
    }

    private String readString(String item) throws ModelFormatException {
      long length = readLong(item);
      if (length < 0 || length > size - pos) {
        throw error(item, "string length " + Long.toUnsignedString(length) + " exceeds the remaining "
            + (size - pos) + " bytes of the file");
      }
      if (length > Integer.MAX_VALUE - 8) {
        throw error(item, "string of " + length + " bytes is too long");
      }
      ByteBuffer bytes = file.asSlice(pos, length).asByteBuffer();
      pos += length;
      try {
        return StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT)
            .decode(bytes)
            .toString();
      } catch (CharacterCodingException e) {
        throw new ModelFormatException(path, item, "string is not valid UTF-8", e);
      }
    }

    private void need(String item, int bytes) throws ModelFormatException {
      if (size - pos < bytes) {
        throw error(item, "file truncated at offset " + pos + " (" + bytes + " more bytes needed, file size "
            + size + ")");
      }
    }

    private byte readByte(String item) throws ModelFormatException {
      need(item, 1);
      return file.get(JAVA_BYTE, pos++);
    }

    private short readShort(String item) throws ModelFormatException {
      need(item, 2);
      short v = file.get(SHORT, pos);
      pos += 2;
      return v;
    }

    private int readInt(String item) throws ModelFormatException {
      need(item, 4);
      int v = file.get(INT, pos);
      pos += 4;
      return v;
    }

    private long readLong(String item) throws ModelFormatException {
      need(item, 8);
      long v = file.get(LONG, pos);
      pos += 8;
      return v;
    }

    private float readFloat(String item) throws ModelFormatException {
      need(item, 4);
      float v = file.get(FLOAT, pos);
      pos += 4;
      return v;
    }

    private double readDouble(String item) throws ModelFormatException {
      need(item, 8);
      double v = file.get(DOUBLE, pos);
      pos += 8;
      return v;
    }

    private long multiply(String item, long a, long b) throws ModelFormatException {
      try {
        return Math.multiplyExact(a, b);
      } catch (ArithmeticException e) {
        throw error(item, "size overflows 64 bits");
      }
    }

    private ModelFormatException error(String item, String problem) {
      return new ModelFormatException(path, item, problem);
    }
  }

  static String tensorItem(String name) {
    return "tensor '" + name + "'";
  }

  static String supportedTypes() {
    return Arrays.stream(new GgmlType[] {GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0,
        GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K}).map(Enum::name).collect(Collectors.joining(", "));
  }

  /** ggml's names of the type ids Selma does not read, so that the message says what the file holds. */
  private static String typeName(int id) {
    String[] names = {"F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K",
        "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S",
        "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16", "Q4_0_4_4", "Q4_0_4_8",
        "Q4_0_8_8", "TQ1_0", "TQ2_0", "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4"};
    return id >= 0 && id < names.length ? " (" + names[id] + ")" : "";
  }
}
