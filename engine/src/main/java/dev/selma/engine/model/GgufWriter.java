package dev.selma.engine.model;

import dev.selma.engine.model.GgufMetadata.Value;
import dev.selma.engine.model.GgufMetadata.ValueType;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.LongFunction;

/**
 * Writes GGUF files (version 3 unless told otherwise; the layout is described on {@link GgufFile}).
 *
 * <p>Metadata are written in the order they were put; tensors in the order they were added, each at
 * the next multiple of the alignment. Tensor data are produced only when {@link #write(Path)} runs,
 * row by row for tensors given as float rows, so that converting a large model does not hold it in
 * memory. Tensors given as floats are quantized with {@link Quants}.
 */
public final class GgufWriter {
  private final Map<String, Value> metadata = new LinkedHashMap<>();
  private final List<Entry> tensors = new ArrayList<>();
  private final Set<String> tensorNames = new HashSet<>();
  private int version = 3;
  private int alignment = GgufFile.DEFAULT_ALIGNMENT;

  /** A tensor whose bytes are produced at write time. */
  private record Entry(String name, GgmlType type, long[] shape, long bytes, DataSource source) {}

  @FunctionalInterface
  private interface DataSource {
    void writeTo(OutputStream out) throws IOException;
  }

  /** GGUF version 2 or 3 (identical layouts for little-endian files); 3 by default. */
  public GgufWriter version(int version) {
    if (version != 2 && version != 3) {
      throw new IllegalArgumentException("GGUF version " + version + " cannot be written (2 or 3)");
    }
    this.version = version;
    return this;
  }

  /** Sets the data alignment (a power of two) and records it as {@code general.alignment}. */
  public GgufWriter alignment(int alignment) {
    if (alignment <= 0 || (alignment & (alignment - 1)) != 0) {
      throw new IllegalArgumentException("alignment " + alignment + " is not a power of two");
    }
    this.alignment = alignment;
    return put(GgufFile.ALIGNMENT_KEY, new Value(ValueType.UINT32, ValueType.UINT32, (long) alignment));
  }

  /** Puts (or replaces) a metadata value; its Java representation must match its type. */
  public GgufWriter put(String key, Value value) {
    if (key == null || key.isEmpty()) {
      throw new IllegalArgumentException("empty metadata key");
    }
    checkValue(key, value, 0);
    if (key.equals(GgufFile.ALIGNMENT_KEY)) {
      if (!(value.value() instanceof Long a) || a <= 0 || a > (1 << 30) || (a & (a - 1)) != 0) {
        throw new IllegalArgumentException(key + " must be an integer power of two");
      }
      alignment = a.intValue();
    }
    metadata.put(key, value);
    return this;
  }

  public GgufWriter putAll(Map<String, Value> values) {
    values.forEach(this::put);
    return this;
  }

  public GgufWriter putString(String key, String value) {
    return put(key, new Value(ValueType.STRING, ValueType.STRING, value));
  }

  public GgufWriter putUint32(String key, long value) {
    return put(key, new Value(ValueType.UINT32, ValueType.UINT32, value));
  }

  public GgufWriter putInt32(String key, int value) {
    return put(key, new Value(ValueType.INT32, ValueType.INT32, (long) value));
  }

  public GgufWriter putFloat32(String key, float value) {
    return put(key, new Value(ValueType.FLOAT32, ValueType.FLOAT32, (double) value));
  }

  public GgufWriter putBool(String key, boolean value) {
    return put(key, new Value(ValueType.BOOL, ValueType.BOOL, value));
  }

  public GgufWriter putStringArray(String key, String[] values) {
    return put(key, new Value(ValueType.ARRAY, ValueType.STRING, values.clone()));
  }

  public GgufWriter putInt32Array(String key, int[] values) {
    return put(key, new Value(ValueType.ARRAY, ValueType.INT32, Arrays.stream(values).asLongStream().toArray()));
  }

  public GgufWriter putFloat32Array(String key, float[] values) {
    double[] d = new double[values.length];
    for (int i = 0; i < values.length; i++) {
      d[i] = values[i];
    }
    return put(key, new Value(ValueType.ARRAY, ValueType.FLOAT32, d));
  }

  /** A tensor from floats, row-major with {@code shape} outermost first, stored as {@code type}. */
  public GgufWriter addTensor(String name, GgmlType type, long[] shape, float[] values) {
    long elements = elementCount(name, shape);
    if (elements != values.length) {
      throw new IllegalArgumentException("tensor '" + name + "' of shape " + Arrays.toString(shape) + " needs "
          + elements + " values but got " + values.length);
    }
    int cols = (int) (shape.length == 0 ? 1 : shape[shape.length - 1]);
    float[] copy = values.clone();
    return addTensor(name, type, shape, row -> Arrays.copyOfRange(copy, (int) (row * cols), (int) (row * cols) + cols));
  }

  /**
   * A tensor whose rows (the last dimension) are produced on demand by {@code rows} at write time and
   * quantized as {@code type}.
   */
  public GgufWriter addTensor(String name, GgmlType type, long[] shape, LongFunction<float[]> rows) {
    long bytes = byteSize(name, type, shape);
    long cols = shape.length == 0 ? 1 : shape[shape.length - 1];
    long rowCount = elementCount(name, shape) / cols;
    if (cols > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("tensor '" + name + "': rows of " + cols + " elements are too long");
    }
    int rowBytes = Math.toIntExact(type.bytesFor(cols));
    return add(new Entry(name, type, shape.clone(), bytes, out -> {
      byte[] buffer = new byte[rowBytes];
      MemorySegment segment = MemorySegment.ofArray(buffer);
      for (long r = 0; r < rowCount; r++) {
        float[] row = rows.apply(r);
        if (row.length != cols) {
          throw new IllegalArgumentException("tensor '" + name + "': row " + r + " has " + row.length
              + " values, expected " + cols);
        }
        Quants.quantize(type, row, 0, (int) cols, segment, 0);
        out.write(buffer);
      }
    }));
  }

  /** A tensor whose bytes are already in {@code type}'s encoding (copied at write time). */
  public GgufWriter addTensor(String name, GgmlType type, long[] shape, MemorySegment bytes) {
    long size = byteSize(name, type, shape);
    if (bytes.byteSize() != size) {
      throw new IllegalArgumentException("tensor '" + name + "' of type " + type + " and shape "
          + Arrays.toString(shape) + " needs " + size + " bytes but got " + bytes.byteSize());
    }
    return add(new Entry(name, type, shape.clone(), size, out -> {
      byte[] buffer = new byte[1 << 16];
      for (long at = 0; at < size; at += buffer.length) {
        int n = (int) Math.min(buffer.length, size - at);
        MemorySegment.copy(bytes, ValueLayout.JAVA_BYTE, at, buffer, 0, n);
        out.write(buffer, 0, n);
      }
    }));
  }

  /** Copies a tensor as is (type, shape and bytes), under its own name. */
  public GgufWriter addTensor(Tensor tensor) {
    return addTensor(tensor.name(), tensor.type(), tensor.shape(), tensor.data());
  }

  private GgufWriter add(Entry entry) {
    if (!tensorNames.add(entry.name)) {
      throw new IllegalArgumentException("duplicate tensor name '" + entry.name + "'");
    }
    tensors.add(entry);
    return this;
  }

  /** Writes the file, replacing any existing one. */
  public void write(Path path) throws IOException {
    try (OutputStream raw = Files.newOutputStream(path);
        CountingStream out = new CountingStream(new BufferedOutputStream(raw, 1 << 20))) {
      out.writeInt(GgufFile.MAGIC);
      out.writeInt(version);
      out.writeLong(tensors.size());
      out.writeLong(metadata.size());
      for (Map.Entry<String, Value> e : metadata.entrySet()) {
        out.writeString(e.getKey());
        out.writeInt(e.getValue().type().id);
        writeValue(out, e.getValue());
      }
      long offset = 0;
      for (Entry t : tensors) {
        out.writeString(t.name);
        out.writeInt(t.shape.length);
        for (int d = t.shape.length - 1; d >= 0; d--) {
          out.writeLong(t.shape[d]);
        }
        out.writeInt(t.type.ggufId);
        out.writeLong(offset);
        offset = GgufFile.alignUp(offset + t.bytes, alignment);
      }
      out.pad(alignment);
      for (Entry t : tensors) {
        long start = out.count;
        t.source.writeTo(out);
        if (out.count - start != t.bytes) {
          throw new IllegalStateException("tensor '" + t.name + "' wrote " + (out.count - start) + " bytes, expected "
              + t.bytes);
        }
        out.pad(alignment);
      }
    }
  }

  private static void writeValue(CountingStream out, Value v) throws IOException {
    switch (v.type()) {
      case ARRAY -> {
        out.writeInt(v.elementType().id);
        switch (v.value()) {
          case long[] a -> {
            out.writeLong(a.length);
            for (long x : a) {
              writeScalar(out, v.elementType(), x);
            }
          }
          case double[] a -> {
            out.writeLong(a.length);
            for (double x : a) {
              writeScalar(out, v.elementType(), x);
            }
          }
          case boolean[] a -> {
            out.writeLong(a.length);
            for (boolean x : a) {
              writeScalar(out, v.elementType(), x);
            }
          }
          case String[] a -> {
            out.writeLong(a.length);
            for (String x : a) {
              out.writeString(x);
            }
          }
          case Value[] a -> {
            out.writeLong(a.length);
            for (Value x : a) {
              writeValue(out, x);
            }
          }
          default -> throw new IllegalArgumentException("not an array: " + v);
        }
      }
      default -> writeScalar(out, v.type(), v.value());
    }
  }

  private static void writeScalar(CountingStream out, ValueType type, Object value) throws IOException {
    switch (type) {
      case UINT8, INT8 -> out.write((int) (long) (Long) value);
      case UINT16, INT16 -> out.writeShort((short) (long) (Long) value);
      case UINT32, INT32 -> out.writeInt((int) (long) (Long) value);
      case UINT64, INT64 -> out.writeLong((Long) value);
      case FLOAT32 -> out.writeInt(Float.floatToRawIntBits((float) (double) (Double) value));
      case FLOAT64 -> out.writeLong(Double.doubleToRawLongBits((Double) value));
      case BOOL -> out.write((Boolean) value ? 1 : 0);
      case STRING -> out.writeString((String) value);
      case ARRAY -> throw new IllegalArgumentException("nested array written as a scalar");
    }
  }

  /** Checks that a value's Java representation matches its GGUF type and range. */
  private static void checkValue(String key, Value v, int depth) {
    if (v == null || v.type() == null || v.elementType() == null) {
      throw new IllegalArgumentException(key + ": incomplete value " + v);
    }
    if (v.type() != ValueType.ARRAY) {
      if (v.elementType() != v.type()) {
        throw new IllegalArgumentException(key + ": a scalar's element type must equal its type");
      }
      checkScalar(key, v.type(), v.value());
      return;
    }
    if (depth >= GgufFile.MAX_ARRAY_DEPTH) {
      throw new IllegalArgumentException(key + ": arrays nested deeper than " + GgufFile.MAX_ARRAY_DEPTH);
    }
    switch (v.elementType()) {
      case UINT8, INT8, UINT16, INT16, UINT32, INT32, UINT64, INT64 -> {
        if (!(v.value() instanceof long[] a)) {
          throw new IllegalArgumentException(key + ": an integer array must be a long[]");
        }
        for (long x : a) {
          checkScalar(key, v.elementType(), x);
        }
      }
      case FLOAT32, FLOAT64 -> require(key, v.value() instanceof double[], "a float array must be a double[]");
      case BOOL -> require(key, v.value() instanceof boolean[], "a bool array must be a boolean[]");
      case STRING -> {
        require(key, v.value() instanceof String[], "a string array must be a String[]");
        for (String s : (String[]) v.value()) {
          require(key, s != null, "null string in array");
        }
      }
      case ARRAY -> {
        require(key, v.value() instanceof Value[], "an array of arrays must be a Value[]");
        for (Value inner : (Value[]) v.value()) {
          require(key, inner != null && inner.type() == ValueType.ARRAY, "elements must be arrays");
          checkValue(key, inner, depth + 1);
        }
      }
    }
  }

  private static void checkScalar(String key, ValueType type, Object value) {
    switch (type) {
      case UINT8 -> checkRange(key, type, value, 0, 0xFF);
      case INT8 -> checkRange(key, type, value, Byte.MIN_VALUE, Byte.MAX_VALUE);
      case UINT16 -> checkRange(key, type, value, 0, 0xFFFF);
      case INT16 -> checkRange(key, type, value, Short.MIN_VALUE, Short.MAX_VALUE);
      case UINT32 -> checkRange(key, type, value, 0, 0xFFFFFFFFL);
      case INT32 -> checkRange(key, type, value, Integer.MIN_VALUE, Integer.MAX_VALUE);
      case UINT64 -> checkRange(key, type, value, 0, Long.MAX_VALUE);
      case INT64 -> checkRange(key, type, value, Long.MIN_VALUE, Long.MAX_VALUE);
      case FLOAT32, FLOAT64 -> require(key, value instanceof Double, type + " must be a Double");
      case BOOL -> require(key, value instanceof Boolean, type + " must be a Boolean");
      case STRING -> require(key, value instanceof String, type + " must be a String");
      case ARRAY -> throw new IllegalArgumentException(key + ": unexpected array");
    }
  }

  private static void checkRange(String key, ValueType type, Object value, long min, long max) {
    require(key, value instanceof Long, type + " must be a Long");
    long v = (Long) value;
    require(key, v >= min && v <= max, "value " + v + " out of range for " + type);
  }

  private static void require(String key, boolean condition, String problem) {
    if (!condition) {
      throw new IllegalArgumentException(key + ": " + problem);
    }
  }

  private static long elementCount(String name, long[] shape) {
    if (shape.length > GgufFile.MAX_DIMS) {
      throw new IllegalArgumentException("tensor '" + name + "' has more than " + GgufFile.MAX_DIMS + " dimensions");
    }
    long n = 1;
    for (long d : shape) {
      if (d <= 0) {
        throw new IllegalArgumentException("tensor '" + name + "' has dimension " + d);
      }
      n = Math.multiplyExact(n, d);
    }
    return n;
  }

  private static long byteSize(String name, GgmlType type, long[] shape) {
    elementCount(name, shape);
    try {
      return Tensor.byteSize(type, shape);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("tensor '" + name + "': " + e.getMessage(), e);
    }
  }

  /** Little-endian output that knows how many bytes it has written (for padding). */
  private static final class CountingStream extends OutputStream {
    private final OutputStream out;
    private final ByteBuffer scratch = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
    long count;

    CountingStream(OutputStream out) {
      this.out = out;
    }

    @Override
    public void write(int b) throws IOException {
      out.write(b);
      count++;
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      out.write(b, off, len);
      count += len;
    }

    void writeShort(short v) throws IOException {
      write(scratch.clear().putShort(v).array(), 0, 2);
    }

    void writeInt(int v) throws IOException {
      write(scratch.clear().putInt(v).array(), 0, 4);
    }

    void writeLong(long v) throws IOException {
      write(scratch.clear().putLong(v).array(), 0, 8);
    }

    void writeString(String s) throws IOException {
      byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
      writeLong(bytes.length);
      write(bytes, 0, bytes.length);
    }

    void pad(int alignment) throws IOException {
      long padded = GgufFile.alignUp(count, alignment);
      while (count < padded) {
        write(0);
      }
    }

    @Override
    public void close() throws IOException {
      out.close();
    }
  }
}
