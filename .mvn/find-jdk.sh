# Sourced by ./mvnw and ./selma: sets JAVA_HOME to a JDK 25+ or exits with a message.
# JAVA_HOME wins when it is 25+; otherwise the newest JDK 25+ found in the usual install folders.
selma_java_major() {
  [ -x "$1/bin/java" ] && [ -x "$1/bin/javac" ] || return 1
  "$1/bin/java" -XshowSettings:properties -version 2>&1 |
    sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p'
}
selma_pick_jdk() {
  if [ -n "${JAVA_HOME-}" ]; then
    v=$(selma_java_major "$JAVA_HOME" || true)
    [ -n "$v" ] && [ "$v" -ge 25 ] && return 0
  fi
  best="" bestv=0
  set +f # the wrapper runs with globbing off; the search needs it
  for c in /usr/lib/jvm/* /usr/java/* /opt/java/* /opt/jdk* "$HOME"/.sdkman/candidates/java/* \
    /Library/Java/JavaVirtualMachines/*/Contents/Home; do
    [ -d "$c" ] || continue
    v=$(selma_java_major "$c" || true)
    if [ -n "$v" ] && [ "$v" -ge 25 ] && [ "$v" -gt "$bestv" ]; then best=$c bestv=$v; fi
  done
  set -f
  if [ -z "$best" ]; then
    echo "Selma needs a JDK 25 or newer to build (found JAVA_HOME='${JAVA_HOME-}', default java:" \
      "$(java -version 2>&1 | head -n 1))." >&2
    echo "Install one (for example Eclipse Temurin 25 under /usr/lib/jvm) or point JAVA_HOME at it." >&2
    exit 1
  fi
  JAVA_HOME=$best
  export JAVA_HOME
}
selma_pick_jdk
