#!/usr/bin/env python3
"""Self-test of tools/gguf_writer.py (numpy only):
    python3 tools/test_gguf_writer.py [tokenizer.json]
Check a llama GGUF against PyTorch reference logits (e.g. the demo model; needs safetensors):
    python3 tools/test_gguf_writer.py --model demo-corpus/selma-demo.gguf engine/src/test/resources/fixtures/demo
"""
import os
import struct
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_writer as gw  # noqa: E402


def rope_hf(x, pos, base):
    """rotate-half RoPE on the last dim (HF convention)."""
    d = x.shape[-1]
    inv = base ** (-np.arange(0, d, 2) / d)
    ang = pos[:, None] * inv[None, :]
    c, s = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))
    rot = np.concatenate([-x[..., d // 2:], x[..., :d // 2]], -1)
    return x * c + rot * s


def rope_ggml_norm(x, pos, base):
    """llama.cpp 'normal' RoPE: rotates adjacent pairs (2i, 2i+1) by pos * base^(-2i/d)."""
    d = x.shape[-1]
    inv = base ** (-np.arange(0, d, 2) / d)
    ang = pos[:, None] * inv[None, :]
    c, s = np.cos(ang), np.sin(ang)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * c - x1 * s
    out[..., 1::2] = x0 * s + x1 * c
    return out


def main():
    rs = np.random.RandomState(0)
    # Q8_0 round trip and byte layout
    x = rs.randn(4, 64).astype(np.float32)
    raw = gw.quantize_q8_0(x)
    assert len(raw) == 8 * 34
    d0 = np.abs(x[0, :32]).max() / 127
    assert abs(struct.unpack("<e", raw[:2])[0] - d0) <= 1e-3 * d0
    q0 = np.frombuffer(raw[2:34], dtype=np.int8).astype(np.float64)
    assert np.abs(q0 - x[0, :32] / d0).max() <= 0.5 + 1e-4 and np.abs(q0).max() == 127
    y = gw.dequantize_q8_0(raw, x.shape)
    err = np.abs(y - x).max() / np.abs(x).max()
    assert err < 1.0 / 127, err
    zeros = gw.dequantize_q8_0(gw.quantize_q8_0(np.zeros((1, 32), np.float32)), (1, 32))
    assert not zeros.any()

    # q/k permutation: scores with HF rope on HF rows == scores with ggml rope on permuted rows
    n_head, n_kv, hd, dim = 4, 2, 16, 64
    wq = rs.randn(n_head * hd, dim)
    wk = rs.randn(n_kv * hd, dim)
    h = rs.randn(7, dim)
    pos = np.arange(7, dtype=np.float64) + 3
    qh = rope_hf((h @ wq.T).reshape(7, n_head, hd).transpose(1, 0, 2), pos, 10000.0)
    kh = rope_hf((h @ wk.T).reshape(7, n_kv, hd).transpose(1, 0, 2), pos, 10000.0)
    qg = rope_ggml_norm((h @ gw.llama_permute_qk(wq, n_head).T).reshape(7, n_head, hd).transpose(1, 0, 2), pos,
                        10000.0)
    kg = rope_ggml_norm((h @ gw.llama_permute_qk(wk, n_kv).T).reshape(7, n_kv, hd).transpose(1, 0, 2), pos,
                        10000.0)
    for hh in range(n_head):
        s1 = qh[hh] @ kh[hh // 2].T
        s2 = qg[hh] @ kg[hh // 2].T
        assert np.allclose(s1, s2, atol=1e-9), "permutation mismatch"
    assert np.array_equal(gw.llama_unpermute_qk(gw.llama_permute_qk(wq, n_head), n_head), wq)

    # a whole llama file
    tok = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".cache", "npm",
                                                             "package", "models", "tokenizer.json")
    cfg = dict(hidden_size=64, num_hidden_layers=2, intermediate_size=96, num_attention_heads=4,
               num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-5, rope_theta=10000.0, context_length=4096)
    ntok = len(gw.sp_bpe_vocab(tok)[0])
    W = {"model.embed_tokens.weight": rs.randn(ntok, 64).astype(np.float32),
         "model.norm.weight": (1 + 0.1 * rs.randn(64)).astype(np.float32)}
    for i in range(2):
        p = f"model.layers.{i}."
        W[p + "input_layernorm.weight"] = rs.randn(64).astype(np.float32)
        W[p + "post_attention_layernorm.weight"] = rs.randn(64).astype(np.float32)
        W[p + "self_attn.q_proj.weight"] = rs.randn(64, 64).astype(np.float32)
        W[p + "self_attn.k_proj.weight"] = rs.randn(32, 64).astype(np.float32)
        W[p + "self_attn.v_proj.weight"] = rs.randn(32, 64).astype(np.float32)
        W[p + "self_attn.o_proj.weight"] = rs.randn(64, 64).astype(np.float32)
        W[p + "mlp.gate_proj.weight"] = rs.randn(96, 64).astype(np.float32)
        W[p + "mlp.up_proj.weight"] = rs.randn(96, 64).astype(np.float32)
        W[p + "mlp.down_proj.weight"] = rs.randn(64, 96).astype(np.float32)
    with tempfile.TemporaryDirectory() as td:
        path = os.path.join(td, "t.gguf")
        gw.write_llama_gguf(path, W, cfg, tok, "{{ bos_token }}", "test",
                            extra_meta=[("selma.test", gw.T_FLOAT32, 1.5),
                                        ("selma.list", gw.T_ARRAY, [1, 2, 3], gw.T_INT32)])
        g = gw.GGUFFile(path)
        assert g.version == 3
        assert g.meta["general.architecture"] == "llama"
        assert g.meta["llama.block_count"] == 2
        assert g.meta["tokenizer.ggml.tokens"][1] == "<s>"
        assert g.meta["tokenizer.ggml.token_type"][0] == 2 and g.meta["tokenizer.ggml.token_type"][1] == 3
        assert g.meta["tokenizer.ggml.token_type"][3] == 6  # <0x00>
        assert g.meta["selma.list"] == [1, 2, 3] and abs(g.meta["selma.test"] - 1.5) < 1e-7
        assert len(g.meta["tokenizer.ggml.merges"]) > 0 and " " in g.meta["tokenizer.ggml.merges"][0]
        assert g.data_start % 32 == 0
        for t in g.tensors.values():
            assert t["offset"] % 32 == 0
        assert g.tensors["token_embd.weight"]["ne"] == [64, ntok]
        assert g.tensors["blk.0.attn_k.weight"]["ne"] == [64, 32]
        assert g.tensors["blk.0.ffn_down.weight"]["ne"] == [96, 64]
        back, _ = gw.read_llama_gguf_as_hf(path)
        for k, v in W.items():
            err = np.abs(back[k] - v).max() / np.abs(v).max()
            assert err < (1e-7 if v.ndim == 1 else 1.0 / 127), (k, err)
        size = os.path.getsize(path)
    print(f"gguf_writer self-test passed ({size} bytes test file)")




def ggml_style_logits(path, ids):
    """Float64 numpy forward of a llama GGUF exactly as llama.cpp lays it out: weights as stored (q/k rows
    permuted), RoPE on adjacent pairs (2i, 2i+1), plain positions 0..n-1, tied or separate output."""
    g = gw.GGUFFile(path)
    m = g.meta
    nl, nh, nkv = m["llama.block_count"], m["llama.attention.head_count"], m["llama.attention.head_count_kv"]
    eps, base = m["llama.attention.layer_norm_rms_epsilon"], m["llama.rope.freq_base"]
    T = {k: g.tensor(k).astype(np.float64) for k in g.tensors}
    emb = T["token_embd.weight"]
    out_w = T.get("output.weight", emb)
    x = emb[ids]
    n = len(ids)
    hd = x.shape[1] // nh
    pos = np.arange(n, dtype=np.float64)

    def norm(v, w):
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + eps) * w

    for i in range(nl):
        h = norm(x, T[f"blk.{i}.attn_norm.weight"])
        q = rope_ggml_norm((h @ T[f"blk.{i}.attn_q.weight"].T).reshape(n, nh, hd).transpose(1, 0, 2), pos, base)
        k = rope_ggml_norm((h @ T[f"blk.{i}.attn_k.weight"].T).reshape(n, nkv, hd).transpose(1, 0, 2), pos, base)
        v = (h @ T[f"blk.{i}.attn_v.weight"].T).reshape(n, nkv, hd).transpose(1, 0, 2)
        o = np.empty((nh, n, hd))
        mask = np.triu(np.full((n, n), -np.inf), 1)
        for hh in range(nh):
            s = q[hh] @ k[hh // (nh // nkv)].T / np.sqrt(hd) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            o[hh] = (s / s.sum(-1, keepdims=True)) @ v[hh // (nh // nkv)]
        x = x + o.transpose(1, 0, 2).reshape(n, nh * hd) @ T[f"blk.{i}.attn_output.weight"].T
        h = norm(x, T[f"blk.{i}.ffn_norm.weight"])
        gate = h @ T[f"blk.{i}.ffn_gate.weight"].T
        x = x + ((gate / (1 + np.exp(-gate))) * (h @ T[f"blk.{i}.ffn_up.weight"].T)) @ T[f"blk.{i}.ffn_down.weight"].T
    return norm(x, T["output_norm.weight"]) @ out_w.T


def check_demo_reference(gguf_path, fixture_dir):
    """Compares the GGUF-direct numpy forward with the PyTorch/HF reference logits of the demo model."""
    import json
    ref = json.load(open(os.path.join(fixture_dir, "reference.json")))
    from safetensors.numpy import load_file
    lg = load_file(os.path.join(fixture_dir, "logits.safetensors"))
    for k, p in enumerate(ref["prompts"]):
        mine = ggml_style_logits(gguf_path, p)
        r = lg[f"logits.{k}"]
        if "positions" in ref:
            mine = mine[ref["positions"][k]]
        err = np.abs(mine - r).max() / np.abs(r).max()
        print(f"demo prompt {k}: {len(p)} tokens, max|diff|/max|ref| = {err:.3g}")
        assert err < 1e-5, err


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--model":
        check_demo_reference(sys.argv[2], sys.argv[3])     # --model FILE.gguf FIXTURE_DIR
    else:
        main()
