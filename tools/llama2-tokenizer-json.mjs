// Rebuilds Meta's Llama 2 tokenizer.json (Hugging Face format) from llama-tokenizer-js, which bakes
// the vocabulary and merges of that file into its source as two base64 constants:
//   llama_vocab_base64   the 32,000 token strings in id order, joined by "\n", UTF-8
//   llama_merges_binary  the merges in rank order, each a pair of little-endian uint16 token ids
// The other sections are those of meta-llama/Llama-2-7b-hf's tokenizer.json (SentencePiece-style BPE
// with byte fallback, "▁" for spaces, <s> prepended by the post-processor).
//
//   node tools/llama2-tokenizer-json.mjs <llama-tokenizer.js> <output-dir>
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const [source, outDir] = process.argv.slice(2);
if (!source || !outDir) {
  console.error('usage: node llama2-tokenizer-json.mjs <llama-tokenizer.js> <output-dir>');
  process.exit(2);
}
const js = readFileSync(source, 'utf8');

function constant(name) {
  const m = js.match(new RegExp(`const ${name} = "([A-Za-z0-9+/=]+)"`));
  if (!m) throw new Error(`${source}: constant ${name} not found`);
  return Buffer.from(m[1], 'base64');
}

const tokens = constant('llama_vocab_base64').toString('utf8').split('\n');
if (tokens.length !== 32000) throw new Error(`expected 32000 tokens, found ${tokens.length}`);
// A prototype-less object: tokens such as "toString" must not collide with Object's own members.
const vocab = Object.create(null);
tokens.forEach((t, id) => {
  if (t in vocab) throw new Error(`duplicate token ${JSON.stringify(t)} at ids ${vocab[t]} and ${id}`);
  vocab[t] = id;
});

const packed = constant('llama_merges_binary');
if (packed.length % 4 !== 0) throw new Error(`merges: ${packed.length} bytes is not a whole number of pairs`);
const merges = [];
for (let i = 0; i < packed.length; i += 4) {
  const a = tokens[packed.readUInt16LE(i)];
  const b = tokens[packed.readUInt16LE(i + 2)];
  if (a === undefined || b === undefined || a.includes(' ') || b.includes(' ')) {
    throw new Error(`merge ${i / 4}: bad token ids`);
  }
  if (!((a + b) in vocab)) throw new Error(`merge ${i / 4}: ${a} + ${b} is not in the vocabulary`);
  merges.push(`${a} ${b}`);
}

const special = (id, content) => ({
  id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
});
const tokenizer = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
  normalizer: {
    type: 'Sequence',
    normalizers: [
      { type: 'Prepend', prepend: '\u2581' },
      { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' },
    ],
  },
  pre_tokenizer: null,
  post_processor: {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [
      { SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
      { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } },
    ],
    special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
  },
  decoder: {
    type: 'Sequence',
    decoders: [
      { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
      { type: 'ByteFallback' },
      { type: 'Fuse' },
      { type: 'Strip', content: ' ', start: 1, stop: 0 },
    ],
  },
  model: {
    type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null,
    end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges,
  },
};
const config = {
  add_bos_token: true,
  add_eos_token: false,
  bos_token: '<s>',
  eos_token: '</s>',
  unk_token: '<unk>',
  pad_token: null,
  legacy: true,
  clean_up_tokenization_spaces: false,
  model_max_length: 4096,
  tokenizer_class: 'LlamaTokenizer',
};
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'tokenizer.json'), JSON.stringify(tokenizer, null, 2));
writeFileSync(join(outDir, 'tokenizer_config.json'), JSON.stringify(config, null, 2));
console.log(`wrote ${join(outDir, 'tokenizer.json')}: ${tokens.length} tokens, ${merges.length} merges`);
