package dev.selma.engine.tokenizer.template;

import java.time.LocalDateTime;
import java.time.temporal.ChronoField;
import java.time.temporal.IsoFields;

/**
 * Python's {@code datetime.strftime} in the C locale, for transformers' {@code strftime_now(format)}
 * (Llama 3.2's template uses {@code "%d %b %Y"}). The time is naive local time, as
 * {@code datetime.now()} gives; {@code %z} and {@code %Z} are therefore empty. glibc's {@code %-d}
 * (no padding) is supported because Python on Linux passes formats to glibc.
 */
final class Strftime {
  private static final String[] DAYS = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
  private static final String[] MONTHS = {
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December"
  };

  private Strftime() {}

  static String format(String format, LocalDateTime t) {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < format.length(); i++) {
      char c = format.charAt(i);
      if (c != '%' || i + 1 >= format.length()) {
        out.append(c);
        continue;
      }
      char d = format.charAt(++i);
      boolean unpadded = d == '-' && i + 1 < format.length();
      if (unpadded) {
        d = format.charAt(++i);
      }
      String field = field(d, t);
      if (field == null) {
        out.append('%').append(unpadded ? "-" : "").append(d);
      } else {
        out.append(unpadded ? stripZeros(field) : field);
      }
    }
    return out.toString();
  }

  private static String stripZeros(String field) {
    int i = 0;
    while (i < field.length() - 1 && (field.charAt(i) == '0' || field.charAt(i) == ' ')) {
      i++;
    }
    return field.substring(i);
  }

  private static String field(char d, LocalDateTime t) {
    int weekday = t.getDayOfWeek().getValue(); // Monday = 1
    int yearDay = t.getDayOfYear();
    int hour12 = t.getHour() % 12 == 0 ? 12 : t.getHour() % 12;
    return switch (d) {
      case 'a' -> DAYS[weekday - 1].substring(0, 3);
      case 'A' -> DAYS[weekday - 1];
      case 'b', 'h' -> MONTHS[t.getMonthValue() - 1].substring(0, 3);
      case 'B' -> MONTHS[t.getMonthValue() - 1];
      case 'c' -> format("%a %b %e %H:%M:%S %Y", t);
      case 'C' -> two(t.getYear() / 100);
      case 'd' -> two(t.getDayOfMonth());
      case 'D' -> format("%m/%d/%y", t);
      case 'e' -> String.format("%2d", t.getDayOfMonth());
      case 'f' -> String.format("%06d", t.get(ChronoField.MICRO_OF_SECOND));
      case 'F' -> format("%Y-%m-%d", t);
      case 'g' -> two(t.get(IsoFields.WEEK_BASED_YEAR) % 100);
      case 'G' -> Integer.toString(t.get(IsoFields.WEEK_BASED_YEAR));
      case 'H' -> two(t.getHour());
      case 'I' -> two(hour12);
      case 'j' -> String.format("%03d", yearDay);
      case 'm' -> two(t.getMonthValue());
      case 'M' -> two(t.getMinute());
      case 'n' -> "\n";
      case 'p' -> t.getHour() < 12 ? "AM" : "PM";
      case 'R' -> format("%H:%M", t);
      case 'S' -> two(t.getSecond());
      case 't' -> "\t";
      case 'T', 'X' -> format("%H:%M:%S", t);
      case 'u' -> Integer.toString(weekday);
      case 'U' -> two((yearDay + 6 - weekday % 7) / 7);
      case 'V' -> two(t.get(IsoFields.WEEK_OF_WEEK_BASED_YEAR));
      case 'w' -> Integer.toString(weekday % 7);
      case 'W' -> two((yearDay + 6 - (weekday - 1)) / 7);
      case 'x' -> format("%m/%d/%y", t);
      case 'y' -> two(t.getYear() % 100);
      case 'Y' -> Integer.toString(t.getYear());
      case 'z', 'Z' -> "";
      case '%' -> "%";
      default -> null;
    };
  }

  private static String two(int n) {
    return n < 10 ? "0" + n : Integer.toString(n);
  }
}
