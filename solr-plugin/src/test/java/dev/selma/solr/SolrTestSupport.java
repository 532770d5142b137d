package dev.selma.solr;

import dev.selma.testmodels.TestModels;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.solr.client.solrj.SolrClient;
import org.apache.solr.client.solrj.SolrRequest;
import org.apache.solr.client.solrj.request.QueryRequest;
import org.apache.solr.client.solrj.request.UpdateRequest;
import org.apache.solr.common.SolrInputDocument;
import org.apache.solr.common.params.ModifiableSolrParams;
import org.apache.solr.common.util.NamedList;

/** What the Solr tests share: the tiny model, solr.xml, the configset, documents and requests. */
final class SolrTestSupport {
  private static Path dir;
  private static Path tiny;

  private SolrTestSupport() {}

  /** A temporary folder for this JVM, deleted at exit. */
  static synchronized Path dir() {
    if (dir == null) {
      try {
        dir = Files.createTempDirectory("selma-solr-test");
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      Path d = dir;
      Runtime.getRuntime().addShutdownHook(new Thread(() -> delete(d)));
    }
    return dir;
  }

  /** The tiny random model (context 4096), written once per JVM. */
  static synchronized Path tinyModel() {
    if (tiny == null) {
      tiny = TestModels.write(dir().resolve("tiny.gguf"), "tiny", 4096, 7);
    }
    return tiny;
  }

  /** A file that starts like a GGUF model but is cut short. */
  static Path brokenModel() throws IOException {
    Path p = dir().resolve("broken.gguf");
    if (!Files.exists(p)) {
      byte[] all = Files.readAllBytes(tinyModel());
      Files.write(p, java.util.Arrays.copyOf(all, all.length / 3));
    }
    return p;
  }

  /** The configset of configs/. */
  static Path configset() {
    return Path.of(System.getProperty("selma.configs.dir"), "selma", "conf");
  }

  /** {@code <property>} lines of solr.xml. */
  static String properties(Map<String, String> props) {
    StringBuilder sb = new StringBuilder();
    props.forEach((k, v) -> sb.append("  <property name=\"").append(k).append("\" value=\"").append(v).append("\"/>\n"));
    return sb.toString();
  }

  static SolrInputDocument doc(String id, String title, String text) {
    SolrInputDocument d = new SolrInputDocument();
    d.addField("id", id);
    d.addField("title", title);
    d.addField("text", text);
    return d;
  }

  /** A few hundred words on {@code topic}. */
  static String text(String topic, int sentences) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < sentences; i++) {
      sb.append("Sentence ").append(i).append(" about ").append(topic).append(" tells of the ").append(topic)
          .append(" and of how the ").append(topic).append(" came to be known. ");
    }
    return sb.toString().strip();
  }

  static void index(SolrClient client, String collection, List<SolrInputDocument> docs, String user, String pass)
      throws Exception {
    UpdateRequest u = new UpdateRequest();
    u.add(docs);
    u.setAction(UpdateRequest.ACTION.COMMIT, true, true);
    if (user != null) {
      u.setBasicAuthCredentials(user, pass);
    }
    u.process(client, collection);
  }

  static QueryRequest answerRequest(String... kv) {
    ModifiableSolrParams p = new ModifiableSolrParams();
    for (int i = 0; i < kv.length; i += 2) {
      p.add(kv[i], kv[i + 1]);
    }
    QueryRequest r = new QueryRequest(p, SolrRequest.METHOD.POST);
    r.setPath("/answer");
    return r;
  }

  @SuppressWarnings("unchecked")
  static List<NamedList<Object>> list(NamedList<Object> rsp, String key) {
    return new ArrayList<>((List<NamedList<Object>>) rsp.get(key));
  }

  private static void delete(Path p) {
    try (Stream<Path> s = Files.walk(p)) {
      s.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
    } catch (IOException e) {
      // best effort at exit
    }
  }
}
