package dev.selma.engine.eval;

import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import javax.imageio.ImageIO;

/** Needle-in-a-haystack heatmaps (PNG) of evaluation results; needs the {@code java.desktop} module. */
public final class Heatmaps {
  private Heatmaps() {}

  /** One heatmap (length × depth, colour = accuracy) per task and scheme, written into {@code dir}. */
  public static List<Path> write(List<EvalResult> results, Path dir) throws IOException {
    System.setProperty("java.awt.headless", "true");
    Files.createDirectories(dir);
    List<Path> written = new java.util.ArrayList<>();
    for (String key : results.stream().map(r -> r.task() + "-" + r.scheme().label()).distinct().toList()) {
      List<EvalResult> rs = results.stream().filter(r -> (r.task() + "-" + r.scheme().label()).equals(key)).toList();
      List<Integer> lengths = List.copyOf(rs.stream().map(EvalResult::targetLength).collect(Collectors.toCollection(TreeSet::new)));
      List<Double> depths = List.copyOf(rs.stream().map(EvalResult::depth).collect(Collectors.toCollection(TreeSet::new)));
      TreeMap<String, double[]> acc = new TreeMap<>();
      for (EvalResult r : rs) {
        double[] a = acc.computeIfAbsent(r.targetLength() + "/" + r.depth(), k -> new double[2]);
        a[0] += r.correct() ? 1 : 0;
        a[1]++;
      }
      int cell = 48, left = 90, top = 40, w = left + cell * lengths.size() + 20, h = top + cell * depths.size() + 50;
      BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
      Graphics2D g = img.createGraphics();
      g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
      g.setColor(Color.WHITE);
      g.fillRect(0, 0, w, h);
      g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
      g.setColor(Color.BLACK);
      g.drawString(key + " (green = found)", 10, 20);
      for (int i = 0; i < lengths.size(); i++) {
        for (int j = 0; j < depths.size(); j++) {
          double[] a = acc.get(lengths.get(i) + "/" + depths.get(j));
          double v = a == null ? Double.NaN : a[0] / a[1];
          g.setColor(Double.isNaN(v) ? Color.LIGHT_GRAY : new Color((float) (1 - v), (float) (0.2 + 0.6 * v), 0.2f));
          g.fillRect(left + i * cell, top + j * cell, cell - 2, cell - 2);
        }
      }
      g.setColor(Color.BLACK);
      for (int j = 0; j < depths.size(); j++) {
        g.drawString(String.format(Locale.ROOT, "depth %.0f%%", 100 * depths.get(j)), 8, top + j * cell + cell / 2);
      }
      for (int i = 0; i < lengths.size(); i++) {
        int l = lengths.get(i);
        g.drawString(l >= 1024 ? (l / 1024) + "K" : Integer.toString(l), left + i * cell + 8, top + depths.size() * cell + 16);
      }
      g.dispose();
      Path png = dir.resolve(key.toLowerCase(Locale.ROOT) + ".png");
      ImageIO.write(img, "png", png.toFile());
      written.add(png);
    }
    return written;
  }
}
