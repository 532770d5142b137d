#!/usr/bin/env bash
# Runs dev.selma.solr.AnswerBenchmark (solr-plugin test sources): end-to-end latency of /answer.
#   solr-plugin/answer-benchmark.sh [--model FILE] [--docs 100] [--words 3000] [--questions 5] \
#     [--budget 4096] [--context 8192] [--max-new-tokens 32] [--threads 0]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
./mvnw -B -ntp -q -pl solr-plugin -am test-compile dependency:build-classpath -DskipTests \
  -Dmdep.includeScope=test -Dmdep.outputFile=target/test.classpath
set +u
. .mvn/find-jdk.sh
selma_pick_jdk
set -u
exec "$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx6g \
  -Dselma.vocab.dir="$repo/.cache/vocab" -Dselma.configs.dir="$repo/configs" \
  -cp "solr-plugin/target/test-classes:solr-plugin/target/classes:$(cat solr-plugin/target/test.classpath)" \
  dev.selma.solr.AnswerBenchmark "$@"
