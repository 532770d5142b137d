package dev.selma.solr;

import static dev.selma.solr.SolrTestSupport.answerRequest;
import static dev.selma.solr.SolrTestSupport.doc;
import static dev.selma.solr.SolrTestSupport.list;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.solr.client.solrj.SolrRequest;
import org.apache.solr.client.solrj.impl.BaseHttpSolrClient;
import org.apache.solr.client.solrj.impl.Http2SolrClient;
import org.apache.solr.client.solrj.request.CollectionAdminRequest;
import org.apache.solr.client.solrj.request.QueryRequest;
import org.apache.solr.common.SolrDocument;
import org.apache.solr.common.SolrDocumentList;
import org.apache.solr.common.SolrInputDocument;
import org.apache.solr.common.params.ModifiableSolrParams;
import org.apache.solr.common.util.NamedList;
import org.apache.solr.cloud.MiniSolrCloudCluster;
import org.apache.solr.embedded.JettySolrRunner;
import org.apache.solr.security.Sha256AuthenticationProvider;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * SolrCloud: two nodes, a collection of two shards, with BasicAuth and rule-based authorization. The
 * /answer permission is a custom one on the handler's path, before the predefined read permission.
 */
class CloudAnswerTest {
  private static final String COLLECTION = "library";
  private static final String PASSWORD = "Selma-test-pw-1";
  private static MiniSolrCloudCluster cluster;
  private static final List<Http2SolrClient> nodes = new ArrayList<>();
  /** Which shard holds each document. */
  private static final Map<String, String> shardOf = new HashMap<>();

  @BeforeAll
  static void start() throws Exception {
    Map<String, String> props = new LinkedHashMap<>();
    props.put("selma.model.tiny.path", SolrTestSupport.tinyModel().toString());
    props.put("selma.model.tiny.threads", "1");
    String solrXml = MiniSolrCloudCluster.DEFAULT_CLOUD_SOLR_XML.replaceFirst("<solr>\n",
        "<solr>\n" + SolrTestSupport.properties(props));
    String hash = Sha256AuthenticationProvider.getSaltedHashedValue(PASSWORD);
    String security = """
        {"authentication": {"class": "solr.BasicAuthPlugin", "blockUnknown": true,
           "credentials": {"admin": "%1$s", "asker": "%1$s", "reader": "%1$s"}},
         "authorization": {"class": "solr.RuleBasedAuthorizationPlugin",
           "user-role": {"admin": ["admin"], "asker": ["asker"], "reader": ["reader"]},
           "permissions": [
             {"name": "selma-answer", "collection": "*", "path": "/answer", "role": ["asker", "admin"]},
             {"name": "read", "role": ["reader", "asker", "admin"]},
             {"name": "all", "role": "admin"}]}}
        """.formatted(hash);
    Path base = Files.createDirectories(SolrTestSupport.dir().resolve("cloud"));
    cluster = new MiniSolrCloudCluster.Builder(2, base)
        .withSolrXml(solrXml)
        .withSecurityJson(security)
        .addConfig("selma", SolrTestSupport.configset().getParent().resolve("conf"))
        .build();
    CollectionAdminRequest.Create create = CollectionAdminRequest.createCollection(COLLECTION, "selma", 2, 1);
    create.setBasicAuthCredentials("admin", PASSWORD);
    create.process(cluster.getSolrClient());
    cluster.waitForActiveCollection(COLLECTION, 2, 2);
    for (JettySolrRunner j : cluster.getJettySolrRunners()) {
      nodes.add(new Http2SolrClient.Builder(j.getBaseUrl().toString()).build());
    }
    List<SolrInputDocument> docs = new ArrayList<>();
    for (int i = 0; i < 12; i++) {
      docs.add(doc("h" + i, "Harbour note " + i, "The harbour keeper wrote note " + i + " about the tides."));
    }
    SolrTestSupport.index(nodes.get(0), COLLECTION, docs, "admin", PASSWORD);
    ModifiableSolrParams q = new ModifiableSolrParams();
    q.set("q", "*:*");
    q.set("rows", 100);
    q.set("fl", "id,[shard]");
    QueryRequest select = new QueryRequest(q);
    select.setBasicAuthCredentials("reader", PASSWORD);
    for (SolrDocument d : select.process(nodes.get(1), COLLECTION).getResults()) {
      shardOf.put((String) d.getFieldValue("id"), (String) d.getFieldValue("[shard]"));
    }
    assertEquals(12, shardOf.size());
    assertEquals(2, new HashSet<>(shardOf.values()).size(), "the documents are spread over both shards");
  }

  @AfterAll
  static void stop() throws Exception {
    for (Http2SolrClient c : nodes) {
      c.close();
    }
    cluster.shutdown();
  }

  private static NamedList<Object> ask(int node, String user, String... kv) throws Exception {
    QueryRequest r = answerRequest(kv);
    if (user != null) {
      r.setBasicAuthCredentials(user, PASSWORD);
    }
    return nodes.get(node).request(r, COLLECTION);
  }

  @Test
  void anAnswerAskedOnEitherNodeDrawsDocumentsFromBothShards() throws Exception {
    for (int node = 0; node < 2; node++) {
      NamedList<Object> rsp = ask(node, "asker", "q", "harbour", "rows", "12", "fl", "id", "selma.maxNewTokens", "4");
      assertTrue(rsp.get("answer") instanceof String);
      List<NamedList<Object>> citations = list(rsp, "citations");
      assertEquals(12, citations.size(), "every document fits");
      Set<String> shards = new HashSet<>();
      for (NamedList<Object> c : citations) {
        shards.add(shardOf.get((String) c.get("id")));
        assertTrue((Float) c.get("score") > 0, "scores come back from the shards");
      }
      assertEquals(2, shards.size(), "node " + node + " cited documents of both shards");
      SolrDocumentList results = (SolrDocumentList) rsp.get("response");
      assertEquals(12, results.getNumFound());
      for (SolrDocument d : results) {
        assertEquals(Set.of("id"), new HashSet<>(d.getFieldNames()), "the result list keeps the fields asked for");
      }
    }
  }

  @Test
  void anonymousRequestsAre401AndUsersWithoutThePermission403() throws Exception {
    BaseHttpSolrClient.RemoteSolrException anonymous = assertThrows(BaseHttpSolrClient.RemoteSolrException.class,
        () -> ask(0, null, "q", "harbour"));
    assertEquals(401, anonymous.code());
    BaseHttpSolrClient.RemoteSolrException reader = assertThrows(BaseHttpSolrClient.RemoteSolrException.class,
        () -> ask(1, "reader", "q", "harbour"));
    assertEquals(403, reader.code());
    // The same user may search: only answers need the selma-answer permission.
    ModifiableSolrParams q = new ModifiableSolrParams();
    q.set("q", "harbour");
    QueryRequest select = new QueryRequest(q, SolrRequest.METHOD.GET);
    select.setBasicAuthCredentials("reader", PASSWORD);
    assertEquals(12, select.process(nodes.get(1), COLLECTION).getResults().getNumFound());
  }
}
