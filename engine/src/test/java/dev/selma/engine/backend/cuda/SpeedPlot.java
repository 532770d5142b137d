package dev.selma.engine.backend.cuda;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import javax.imageio.ImageIO;

/**
 * Context length against seconds, log-log, one line per series, from a CSV of {@code
 * series,tokens,seconds} rows (the benchmark tables in {@code docs/benchmarks.md}): the plots of the
 * long-context benchmarks. Needs {@code java.desktop}, so it runs here, not on the GPU machine.
 *
 * <pre>java ... dev.selma.engine.backend.cuda.SpeedPlot data.csv out.png "title"</pre>
 */
public final class SpeedPlot {
  private SpeedPlot() {}

  private static final Color[] COLOURS = {new Color(0xc0392b), new Color(0x2471a3), new Color(0x7f8c8d),
      new Color(0x229954), new Color(0x8e44ad)};

  public static void main(String[] args) throws Exception {
    System.setProperty("java.awt.headless", "true");
    Map<String, List<double[]>> series = new LinkedHashMap<>();
    for (String line : Files.readAllLines(Path.of(args[0]))) {
      if (line.isBlank() || line.startsWith("#")) {
        continue;
      }
      String[] f = line.split(",");
      series.computeIfAbsent(f[0].strip(), k -> new ArrayList<>())
          .add(new double[] {Double.parseDouble(f[1]), Double.parseDouble(f[2])});
    }
    double minX = Double.MAX_VALUE, maxX = 0, minY = Double.MAX_VALUE, maxY = 0;
    for (List<double[]> points : series.values()) {
      for (double[] p : points) {
        minX = Math.min(minX, p[0]);
        maxX = Math.max(maxX, p[0]);
        minY = Math.min(minY, p[1]);
        maxY = Math.max(maxY, p[1]);
      }
    }
    double lx0 = Math.log10(minX) - 0.1, lx1 = Math.log10(maxX) + 0.1;
    double ly0 = Math.floor(Math.log10(minY)), ly1 = Math.ceil(Math.log10(maxY));
    int w = 760, h = 480, left = 70, right = 220, top = 40, bottom = 50;
    BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = img.createGraphics();
    g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
    g.setColor(Color.WHITE);
    g.fillRect(0, 0, w, h);
    g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
    int pw = w - left - right, ph = h - top - bottom;
    g.setColor(new Color(0xdddddd));
    for (double ly = ly0; ly <= ly1; ly++) {
      int y = top + (int) ((ly1 - ly) / (ly1 - ly0) * ph);
      g.drawLine(left, y, left + pw, y);
      g.setColor(Color.DARK_GRAY);
      g.drawString(String.format(Locale.ROOT, "%s s", ly < 0 ? String.valueOf(Math.pow(10, ly)) : String.valueOf(
          (long) Math.pow(10, ly))), 8, y + 4);
      g.setColor(new Color(0xdddddd));
    }
    g.setColor(Color.DARK_GRAY);
    for (List<double[]> points : series.values()) {
      for (double[] p : points) {
        int x = left + (int) ((Math.log10(p[0]) - lx0) / (lx1 - lx0) * pw);
        g.drawString(p[0] >= 1 << 20 ? (long) p[0] / (1 << 20) + "M" : (long) p[0] / 1024 + "K", x - 10, top + ph + 18);
      }
    }
    g.drawRect(left, top, pw, ph);
    g.drawString("prompt tokens (log)", left + pw / 2 - 50, h - 12);
    g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 14));
    g.drawString(args.length > 2 ? args[2] : "", left, 24);
    g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
    int i = 0;
    for (Map.Entry<String, List<double[]>> e : series.entrySet()) {
      g.setColor(COLOURS[i % COLOURS.length]);
      g.setStroke(new BasicStroke(2.2f));
      int[] prev = null;
      for (double[] p : e.getValue()) {
        int x = left + (int) ((Math.log10(p[0]) - lx0) / (lx1 - lx0) * pw);
        int y = top + (int) ((ly1 - Math.log10(p[1])) / (ly1 - ly0) * ph);
        g.fillOval(x - 4, y - 4, 8, 8);
        if (prev != null) {
          g.drawLine(prev[0], prev[1], x, y);
        }
        prev = new int[] {x, y};
      }
      g.drawLine(left + pw + 15, top + 15 + 22 * i, left + pw + 40, top + 15 + 22 * i);
      g.setColor(Color.DARK_GRAY);
      g.drawString(e.getKey(), left + pw + 46, top + 19 + 22 * i);
      i++;
    }
    ImageIO.write(img, "png", Path.of(args[1]).toFile());
  }
}
