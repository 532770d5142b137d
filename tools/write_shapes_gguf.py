#!/usr/bin/env python3
"""Writes a GGUF file of a real architecture's shapes with random BF16 weights and no tokenizer: the
file a weight-upload benchmark reads (CudaLoadBenchmark), without a 16 GB download.

    python3 tools/write_shapes_gguf.py llama-3-8b /tmp/llama-3-8b-shapes.gguf

Values are random bf16 bit patterns of small magnitude (about 0.008 to 0.03): their only use is to be
read, converted and uploaded.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_writer import GGML_BF16, GGML_F32, GGUFWriter  # noqa: E402

ARCHS = {
    # hidden, intermediate, layers, heads, kv heads, vocab, rope theta, context
    "llama-3-8b": (4096, 14336, 32, 32, 8, 128256, 500000.0, 8192),
}


def main():
    arch, out = sys.argv[1], sys.argv[2]
    hidden, inter, layers, heads, kv_heads, vocab, theta, context = ARCHS[arch]
    head_dim = hidden // heads
    rng = np.random.default_rng(0)

    def matrix(rows, cols):
        return rng.integers(0x3c00, 0x3d00, size=(rows, cols), dtype=np.uint16)

    w = GGUFWriter()
    w.add_string("general.architecture", "llama")
    w.add_string("general.name", arch + " shapes, random weights")
    w.add_uint32("llama.context_length", context)
    w.add_uint32("llama.embedding_length", hidden)
    w.add_uint32("llama.feed_forward_length", inter)
    w.add_uint32("llama.block_count", layers)
    w.add_uint32("llama.attention.head_count", heads)
    w.add_uint32("llama.attention.head_count_kv", kv_heads)
    w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    w.add_float32("llama.rope.freq_base", theta)
    w.add_tensor("token_embd.weight", matrix(vocab, hidden), GGML_BF16)
    for l in range(layers):
        p = f"blk.{l}."
        w.add_tensor(p + "attn_norm.weight", np.ones(hidden, dtype=np.float32), GGML_F32)
        w.add_tensor(p + "attn_q.weight", matrix(heads * head_dim, hidden), GGML_BF16)
        w.add_tensor(p + "attn_k.weight", matrix(kv_heads * head_dim, hidden), GGML_BF16)
        w.add_tensor(p + "attn_v.weight", matrix(kv_heads * head_dim, hidden), GGML_BF16)
        w.add_tensor(p + "attn_output.weight", matrix(hidden, heads * head_dim), GGML_BF16)
        w.add_tensor(p + "ffn_norm.weight", np.ones(hidden, dtype=np.float32), GGML_F32)
        w.add_tensor(p + "ffn_gate.weight", matrix(inter, hidden), GGML_BF16)
        w.add_tensor(p + "ffn_up.weight", matrix(inter, hidden), GGML_BF16)
        w.add_tensor(p + "ffn_down.weight", matrix(hidden, inter), GGML_BF16)
    w.add_tensor("output_norm.weight", np.ones(hidden, dtype=np.float32), GGML_F32)
    w.add_tensor("output.weight", matrix(vocab, hidden), GGML_BF16)
    w.write(out)
    print(f"{out}: {os.path.getsize(out) / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
