package dev.selma.engine.model;

import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The key/value metadata of a GGUF file, in file order, with typed accessors that fail with a
 * {@link ModelFormatException} naming the file and key when a value is missing or of the wrong type.
 *
 * <p>Values keep their GGUF type (so that a writer reproduces them exactly). Scalars are held as
 * {@code Long} (every integer type; UINT64 above {@code Long.MAX_VALUE} is rejected by the reader),
 * {@code Double} (FLOAT32 and FLOAT64), {@code Boolean} or {@code String}. Arrays are held as Java
 * arrays: {@code long[]}, {@code double[]}, {@code boolean[]}, {@code String[]}, or {@code Value[]} for
 * arrays of arrays.
 */
public final class GgufMetadata {

  /** GGUF metadata value types, with their ids in the file. */
  public enum ValueType {
    UINT8(0), INT8(1), UINT16(2), INT16(3), UINT32(4), INT32(5), FLOAT32(6), BOOL(7), STRING(8), ARRAY(9),
    UINT64(10), INT64(11), FLOAT64(12);

    public final int id;

    ValueType(int id) {
      this.id = id;
    }

    public static ValueType fromId(int id) {
      for (ValueType t : values()) {
        if (t.id == id) {
          return t;
        }
      }
      return null;
    }
  }

  /**
   * One value. For arrays, {@code elementType} is the type of the elements; otherwise it equals
   * {@code type}.
   */
  public record Value(ValueType type, ValueType elementType, Object value) {}

  private final Path file;
  private final Map<String, Value> values;

  public GgufMetadata(Path file, Map<String, Value> values) {
    this.file = file;
    this.values = Collections.unmodifiableMap(new LinkedHashMap<>(values));
  }

  public Path file() {
    return file;
  }

  public Map<String, Value> values() {
    return values;
  }

  public Set<String> keys() {
    return values.keySet();
  }

  public boolean contains(String key) {
    return values.containsKey(key);
  }

  public Value get(String key) {
    return values.get(key);
  }

  public String getString(String key) throws ModelFormatException {
    return scalar(key, String.class, "a string");
  }

  public String getString(String key, String defaultValue) throws ModelFormatException {
    return contains(key) ? getString(key) : defaultValue;
  }

  public long getLong(String key) throws ModelFormatException {
    return scalar(key, Long.class, "an integer");
  }

  public int getInt(String key) throws ModelFormatException {
    long v = getLong(key);
    if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
      throw new ModelFormatException(file, key, "value " + v + " does not fit in an int");
    }
    return (int) v;
  }

  public int getInt(String key, int defaultValue) throws ModelFormatException {
    return contains(key) ? getInt(key) : defaultValue;
  }

  public double getDouble(String key) throws ModelFormatException {
    return scalar(key, Double.class, "a float");
  }

  public double getDouble(String key, double defaultValue) throws ModelFormatException {
    return contains(key) ? getDouble(key) : defaultValue;
  }

  public boolean getBoolean(String key, boolean defaultValue) throws ModelFormatException {
    return contains(key) ? scalar(key, Boolean.class, "a bool") : defaultValue;
  }

  public String[] getStringArray(String key) throws ModelFormatException {
    return array(key, String[].class, "an array of strings");
  }

  public long[] getLongArray(String key) throws ModelFormatException {
    return array(key, long[].class, "an array of integers");
  }

  public int[] getIntArray(String key) throws ModelFormatException {
    long[] a = getLongArray(key);
    int[] out = new int[a.length];
    for (int i = 0; i < a.length; i++) {
      if (a[i] < Integer.MIN_VALUE || a[i] > Integer.MAX_VALUE) {
        throw new ModelFormatException(file, key, "element " + i + " = " + a[i] + " does not fit in an int");
      }
      out[i] = (int) a[i];
    }
    return out;
  }

  public float[] getFloatArray(String key) throws ModelFormatException {
    double[] a = array(key, double[].class, "an array of floats");
    float[] out = new float[a.length];
    for (int i = 0; i < a.length; i++) {
      out[i] = (float) a[i];
    }
    return out;
  }

  private <T> T scalar(String key, Class<T> type, String what) throws ModelFormatException {
    Value v = values.get(key);
    if (v == null) {
      throw new ModelFormatException(file, key, "missing metadata key");
    }
    if (!type.isInstance(v.value())) {
      throw new ModelFormatException(file, key, "expected " + what + " but found " + v.type());
    }
    return type.cast(v.value());
  }

  private <T> T array(String key, Class<T> type, String what) throws ModelFormatException {
    Value v = values.get(key);
    if (v == null) {
      throw new ModelFormatException(file, key, "missing metadata key");
    }
    if (v.type() != ValueType.ARRAY || !type.isInstance(v.value())) {
      throw new ModelFormatException(file, key, "expected " + what + " but found " + v.type()
          + (v.type() == ValueType.ARRAY ? " of " + v.elementType() : ""));
    }
    return type.cast(v.value());
  }
}
