package dev.selma.engine.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * The strings the tokenizers are compared on: generated from fixed seeds, so every run compares the
 * same 5,000+ strings, drawn from the kinds of text that break tokenizers — prose with contractions,
 * source code, whitespace runs, numbers, CJK, emoji, combining marks, special-token spellings, very
 * long words and random code points.
 */
final class TestStrings {
  private static final String[] WORDS = (
      "the of and to in is was he for it with as his on be at by had are but from or have an they which one you "
      + "were her all she there would their we him been has when who will more no if out so said what up its about "
      + "into than them can only other new some could time these two may then do first any my now such like our over "
      + "man me even most made after also did many before must through back years where much your way well down should "
      + "because each just those people Mr how too little state good very make world still own see men work long get "
      + "here between both life being under never day same another know while last might us great old year off come "
      + "since against go came right used take three Elizabeth Darcy Bennet Netherfield Longbourn Pemberley tokenizer "
      + "encoding naïve café résumé coöperate Zürich São Paulo Ελληνικά русский язык عربي עברית हिन्दी ไทย "
      + "don't won't it's I'm you're we've they'll she'd WE'RE THEY'VE I'LL HE'S isn't couldn't o'clock rock'n'roll")
      .split(" ");

  private static final String[] CODE = {
      "public static void main(String[] args) {\n    System.out.println(\"Hello, world!\");\n}\n",
      "def fib(n):\n\tif n < 2:\n\t\treturn n\n\treturn fib(n - 1) + fib(n - 2)\n",
      "for (int i = 0; i < n; i++) { sum += a[i] * b[i]; }",
      "{\"key\": [1, 2.5, -3e10, true, null], \"nested\": {\"a\": \"b\\n\"}}",
      "#include <stdio.h>\r\nint main(void) {\r\n  return 0;\r\n}\r\n",
      "SELECT id, name FROM users WHERE age >= 21 AND name LIKE '%son';",
      "x = [i**2 for i in range(10) if i % 3 == 0]  # squares",
      "<div class=\"a\"><span>&nbsp;text&lt;/span&gt;</div>",
      "fn main() -> Result<(), Box<dyn Error>> { let v: Vec<u8> = vec![0xff; 16]; Ok(()) }",
      "    if (a && !b || c != d) {\n        return a->next;\n    }",
      "$ ./mvnw -B -ntp -q verify 2>&1 | tail -n 20 && echo \"done\"",
      "const re = /^[a-z0-9_-]{3,16}$/gi; // username",
      "    \t  \n\n\n   \t\t\n",
  };

  private static final String[] SPECIAL = {
      "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
      "<|reserved_special_token_5|>", "<|eom_id|>", "<|python_tag|>", "<s>", "</s>", "<unk>", "[INST]", "[/INST]",
      "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<tool_call>", "</tool_call>",
      "<|fim_prefix|>", "<|vision_pad|>", "<0x0A>", "<|begin_of_text", "<s", "</s >", "<|im_start", "< s>",
      "<|", "|>", "<<s>>", "<s><s>", "</s></s>",
  };

  private static final String[] CJK = {
      "我们今天去公园散步，天气非常好。", "東京は日本の首都です。", "ひらがなとカタカナ、そして漢字。",
      "대한민국의 수도는 서울입니다.", "「引用」と『二重引用』。", "中文，English 混合 text 123。", "一二三四五六七八九十",
      "鑫龘齉𠀋𪚥𩸽", "ｆｕｌｌｗｉｄｔｈ　ＡＢＣ　１２３",
  };

  private static final String[] EMOJI = {
      "😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵🇫🇷", "1️⃣", "❤️", "🦙", "🧑🏿‍💻", "👩‍❤️‍💋‍👨", "☕", "🫠", "✌🏻",
  };

  private static final String[] MARKS = {
      "e\u0301", "a\u0308", "n\u0303", "A\u030A", "Vie\u0323\u0302t Nam", "\u05E9\u05C1\u05B8\u05DC\u05D5\u05B9\u05DD",
      "\u0627\u064E\u0644\u0652", "\u0915\u094D\u0937", "\u0E01\u0E34\u0E19", "\u1100\u1161\u11A8", "Z\u0351\u036B\u0343",
      "\u00C5", "\u212B", "\u1E9B\u0323", "o\u0308\u0304", "\uFB01", "\u0041\u030A\u0301",
  };

  private static final String[] SPACES = {
      " ", "  ", "\t", "\n", "\r\n", "\r", "\u000B", "\u000C", "\u0085", "\u00A0", "\u1680", "\u2000", "\u2007",
      "\u200A", "\u2028", "\u2029", "\u202F", "\u205F", "\u3000", "\u200B", "\uFEFF",
  };

  private static final String[] NUMBERS = {
      "0", "7", "42", "123", "1234", "12345", "3.14159", "-273.15", "1,000,000", "1e-9", "0xDEADBEEF", "2024-05-17",
      "٣٤٥", "１２３", "²³", "Ⅻ", "①②③", "12:30pm", "+1 (555) 010-9999", "3/4", "v1.2.3",
  };

  private TestStrings() {}

  /** The full list: at least 5,000 strings, the same on every run. */
  static List<String> all() {
    List<String> out = new ArrayList<>();
    out.add("");
    out.add(" ");
    out.add("Hello, my dog is cute");
    out.add("The pass key is 71432. Remember it. 71432 is the pass key.");
    out.add("'s'S'\u017F'T'RE'Ve'LL'd 'sure'");
    // Case folding in the contractions: long s folds to s, the Kelvin sign to k (not a contraction).
    out.add("'\u017Fure 'Sure '\u212Aey");
    // Letters and digits from recent Unicode versions (15.0: CJK Ext. H, Kawi; 16.0: Garay).
    out.add("a\uD884\uDF50b c x\uD803\uDD40\uD803\uDD41 y q\uD807\uDF04r 1\uD807\uDF50\uD807\uDF51 \u0CF3x");
    add(out, 1, 600, TestStrings::prose);
    add(out, 2, 400, TestStrings::code);
    add(out, 3, 400, TestStrings::whitespace);
    add(out, 4, 400, TestStrings::numbers);
    add(out, 5, 400, TestStrings::cjk);
    add(out, 6, 400, TestStrings::emoji);
    add(out, 7, 400, TestStrings::marks);
    add(out, 8, 500, TestStrings::special);
    add(out, 9, 150, TestStrings::longWord);
    add(out, 10, 600, TestStrings::randomUnicode);
    add(out, 11, 400, TestStrings::singles);
    add(out, 12, 400, TestStrings::mixed);
    return out;
  }

  private interface Generator {
    String make(Random r);
  }

  private static void add(List<String> out, long seed, int count, Generator g) {
    Random r = new Random(seed);
    for (int i = 0; i < count; i++) {
      out.add(g.make(r));
    }
  }

  private static String pick(Random r, String[] from) {
    return from[r.nextInt(from.length)];
  }

  static String prose(Random r) {
    StringBuilder sb = new StringBuilder();
    int sentences = 1 + r.nextInt(4);
    for (int s = 0; s < sentences; s++) {
      int words = 3 + r.nextInt(15);
      for (int w = 0; w < words; w++) {
        String word = pick(r, WORDS);
        if (w == 0) {
          word = Character.toUpperCase(word.charAt(0)) + word.substring(1);
        }
        sb.append(word);
        int p = r.nextInt(20);
        if (p == 0) {
          sb.append(',');
        } else if (p == 1) {
          sb.append(';');
        } else if (p == 2) {
          sb.insert(sb.length() - word.length(), '"').append('"');
        } else if (p == 3) {
          sb.append("'s");
        }
        if (w + 1 < words) {
          sb.append(' ');
        }
      }
      sb.append(pick(r, new String[] {".", "!", "?", "...", ".\n", ".\n\n", "—"}));
      if (s + 1 < sentences) {
        sb.append(' ');
      }
    }
    return sb.toString();
  }

  static String code(Random r) {
    String c = pick(r, CODE);
    if (r.nextBoolean()) {
      c = c.replace("    ", "\t");
    }
    return r.nextInt(4) == 0 ? c + pick(r, CODE) : c;
  }

  static String whitespace(Random r) {
    StringBuilder sb = new StringBuilder();
    int parts = 1 + r.nextInt(8);
    for (int i = 0; i < parts; i++) {
      int n = 1 + r.nextInt(6);
      for (int k = 0; k < n; k++) {
        sb.append(pick(r, SPACES));
      }
      if (r.nextInt(3) > 0) {
        sb.append(r.nextInt(4) == 0 ? pick(r, NUMBERS) : r.nextInt(5) == 0 ? "." : pick(r, WORDS));
      }
    }
    return sb.toString();
  }

  static String numbers(Random r) {
    StringBuilder sb = new StringBuilder();
    int parts = 1 + r.nextInt(5);
    for (int i = 0; i < parts; i++) {
      if (r.nextInt(3) == 0) {
        int len = 1 + r.nextInt(40);
        for (int k = 0; k < len; k++) {
          sb.append((char) ('0' + r.nextInt(10)));
        }
      } else {
        sb.append(pick(r, NUMBERS));
      }
      sb.append(pick(r, new String[] {" ", "", "x", " and ", ",", "\n", "abc", "%"}));
    }
    return sb.toString();
  }

  static String cjk(Random r) {
    StringBuilder sb = new StringBuilder(pick(r, CJK));
    if (r.nextBoolean()) {
      sb.append(r.nextBoolean() ? " " : "").append(pick(r, CJK));
    }
    if (r.nextInt(3) == 0) {
      // random characters from the CJK Unified Ideographs, Hiragana and Hangul blocks
      int n = 1 + r.nextInt(20);
      for (int k = 0; k < n; k++) {
        int block = r.nextInt(3);
        sb.appendCodePoint(block == 0 ? 0x4E00 + r.nextInt(0x5200) : block == 1 ? 0x3041 + r.nextInt(0x56)
            : 0xAC00 + r.nextInt(11172));
      }
    }
    return sb.toString();
  }

  static String emoji(Random r) {
    StringBuilder sb = new StringBuilder();
    int n = 1 + r.nextInt(6);
    for (int i = 0; i < n; i++) {
      sb.append(pick(r, EMOJI));
      if (r.nextInt(3) == 0) {
        sb.append(r.nextBoolean() ? " " : pick(r, WORDS));
      }
    }
    return sb.toString();
  }

  static String marks(Random r) {
    StringBuilder sb = new StringBuilder();
    int n = 1 + r.nextInt(6);
    for (int i = 0; i < n; i++) {
      sb.append(pick(r, MARKS));
      if (r.nextBoolean()) {
        sb.append(r.nextBoolean() ? " " : pick(r, WORDS));
      }
      if (r.nextInt(4) == 0) {
        sb.appendCodePoint(0x0300 + r.nextInt(0x70)); // a stray combining mark
      }
    }
    return sb.toString();
  }

  static String special(Random r) {
    StringBuilder sb = new StringBuilder();
    int n = 1 + r.nextInt(5);
    for (int i = 0; i < n; i++) {
      int k = r.nextInt(4);
      if (k == 0) {
        sb.append(' ');
      } else if (k == 1) {
        sb.append(pick(r, WORDS));
      } else if (k == 2) {
        sb.append('\n');
      }
      sb.append(pick(r, SPECIAL));
    }
    if (r.nextBoolean()) {
      sb.append(pick(r, WORDS));
    }
    return sb.toString();
  }

  static String longWord(Random r) {
    int len = 100 + r.nextInt(2500);
    StringBuilder sb = new StringBuilder(len);
    switch (r.nextInt(5)) {
      case 0 -> sb.repeat('a', len);
      case 1 -> {
        for (int i = 0; i < len; i++) {
          sb.append((char) ('a' + r.nextInt(26)));
        }
      }
      case 2 -> {
        String alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for (int i = 0; i < len; i++) {
          sb.append(alphabet.charAt(r.nextInt(alphabet.length())));
        }
      }
      case 3 -> {
        sb.append("https://example.com/");
        while (sb.length() < len) {
          sb.append(pick(r, WORDS)).append(r.nextBoolean() ? "/" : "-");
        }
      }
      default -> {
        while (sb.length() < len) {
          sb.append("Donaudampfschifffahrt");
        }
      }
    }
    return sb.toString();
  }

  /** Random Unicode scalar values, weighted towards the planes that are mostly assigned. */
  static String randomUnicode(Random r) {
    StringBuilder sb = new StringBuilder();
    int n = 1 + r.nextInt(30);
    for (int i = 0; i < n; i++) {
      int cp;
      do {
        int plane = r.nextInt(10);
        cp = plane < 6 ? r.nextInt(0x10000) : plane < 8 ? 0x10000 + r.nextInt(0x10000)
            : plane < 9 ? 0x20000 + r.nextInt(0x20000) : r.nextInt(0x110000);
      } while (cp >= 0xD800 && cp <= 0xDFFF);
      sb.appendCodePoint(cp);
      if (r.nextInt(5) == 0) {
        sb.append(' ');
      }
    }
    return sb.toString();
  }

  static String singles(Random r) {
    return switch (r.nextInt(5)) {
      case 0 -> pick(r, SPACES);
      case 1 -> String.valueOf((char) (0x20 + r.nextInt(0x5F)));
      case 2 -> pick(r, WORDS);
      case 3 -> new String(Character.toChars(0x80 + r.nextInt(0x2000)));
      default -> pick(r, SPACES).repeat(1 + r.nextInt(20));
    };
  }

  static String mixed(Random r) {
    Generator[] gs = {TestStrings::prose, TestStrings::code, TestStrings::whitespace, TestStrings::numbers,
        TestStrings::cjk, TestStrings::emoji, TestStrings::marks, TestStrings::special, TestStrings::randomUnicode};
    StringBuilder sb = new StringBuilder();
    int n = 2 + r.nextInt(4);
    for (int i = 0; i < n; i++) {
      sb.append(gs[r.nextInt(gs.length)].make(r));
    }
    return sb.toString();
  }
}
