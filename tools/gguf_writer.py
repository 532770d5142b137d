#!/usr/bin/env python3
"""A small GGUF v3 writer and reader (numpy only), written from the GGUF specification.

File layout (all little-endian):
  magic "GGUF", uint32 version (3), uint64 tensor_count, uint64 metadata_kv_count,
  metadata: key (gguf string = uint64 length + UTF-8 bytes), uint32 value type, value
  tensor infos: name, uint32 n_dims, uint64 ne[n_dims] (ne0 = innermost = row length), uint32 ggml type,
                uint64 offset (relative to the start of the data section, a multiple of the alignment)
  padding to `general.alignment` (32), then the tensor data, each tensor padded to the alignment.

Tensor types written here: F32 (0), F16 (1), Q8_0 (8: blocks of 32 values = fp16 scale d + 32 int8,
d = amax/127, q = round(x/d), x = d*q), BF16 (30, given as uint16 bit patterns).

Also: `llama_permute_qk` (the row order llama.cpp's converter uses for Llama q/k projections) and
`write_llama_gguf`, which writes a Llama-architecture model with a SentencePiece-style BPE tokenizer
taken from a Hugging Face tokenizer.json.

Command line:  python3 tools/gguf_writer.py FILE.gguf   prints the metadata (arrays shortened) and tensors.
"""
import json
import struct
import sys

import numpy as np

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
ALIGNMENT = 32

# metadata value types
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32, T_BOOL, T_STRING, T_ARRAY, T_UINT64, \
    T_INT64, T_FLOAT64 = range(13)
_SCALAR_FMT = {T_UINT8: "<B", T_INT8: "<b", T_UINT16: "<H", T_INT16: "<h", T_UINT32: "<I", T_INT32: "<i",
               T_FLOAT32: "<f", T_BOOL: "<?", T_UINT64: "<Q", T_INT64: "<q", T_FLOAT64: "<d"}
_NP_DTYPE = {T_UINT8: "<u1", T_INT8: "<i1", T_UINT16: "<u2", T_INT16: "<i2", T_UINT32: "<u4", T_INT32: "<i4",
             T_FLOAT32: "<f4", T_BOOL: "<u1", T_UINT64: "<u8", T_INT64: "<i8", T_FLOAT64: "<f8"}

# ggml tensor types
GGML_F32, GGML_F16, GGML_Q8_0, GGML_BF16 = 0, 1, 8, 30
QK8_0 = 32
Q8_0_BLOCK_BYTES = 2 + QK8_0
TYPE_NAMES = {GGML_F32: "F32", GGML_F16: "F16", GGML_Q8_0: "Q8_0"}


# ---------------------------------------------------------------------------------------------- quantisation

def quantize_q8_0(x):
    """x: float array whose last dimension is a multiple of 32. Returns the raw Q8_0 bytes (row-major)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.shape[-1] % QK8_0:
        raise ValueError(f"row length {x.shape[-1]} is not a multiple of {QK8_0}")
    blocks = x.reshape(-1, QK8_0)
    amax = np.max(np.abs(blocks), axis=1)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d > 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    v = blocks * inv[:, None]
    q = (np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))).astype(np.int8)   # round half away from zero
    out = np.empty((blocks.shape[0], Q8_0_BLOCK_BYTES), dtype=np.uint8)
    out[:, :2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def dequantize_q8_0(raw, shape):
    """Inverse of quantize_q8_0: raw bytes -> float32 array of `shape` (numpy order, last = row)."""
    n = int(np.prod(shape))
    b = np.frombuffer(raw, dtype=np.uint8, count=n // QK8_0 * Q8_0_BLOCK_BYTES).reshape(-1, Q8_0_BLOCK_BYTES)
    d = b[:, :2].copy().view("<f2").astype(np.float32)
    q = b[:, 2:].copy().view(np.int8).astype(np.float32)
    return (q * d).reshape(shape)


def llama_permute_qk(w, n_head):
    """HF (rotate-half) row order -> llama.cpp (adjacent pairs) row order for a q or k projection [out, in].
    n_head is the number of heads of this projection (n_head_kv for k)."""
    out = w.shape[0]
    return (w.reshape(n_head, 2, out // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2)
            .reshape(w.shape))


def llama_unpermute_qk(w, n_head):
    out = w.shape[0]
    return (w.reshape(n_head, out // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2)
            .reshape(w.shape))


# ---------------------------------------------------------------------------------------------- writer

def _gguf_str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


class GGUFWriter:
    def __init__(self, alignment=ALIGNMENT):
        self.kv = []          # (key, type, value, elem_type)
        self.tensors = []     # (name, ne list, ggml type, raw bytes)
        self.alignment = alignment

    # metadata
    def add(self, key, vtype, value, elem_type=None):
        if any(k == key for k, *_ in self.kv):
            raise ValueError(f"duplicate metadata key {key}")
        self.kv.append((key, vtype, value, elem_type))

    def add_string(self, key, v): self.add(key, T_STRING, v)
    def add_uint32(self, key, v): self.add(key, T_UINT32, int(v))
    def add_int32(self, key, v): self.add(key, T_INT32, int(v))
    def add_float32(self, key, v): self.add(key, T_FLOAT32, float(v))
    def add_bool(self, key, v): self.add(key, T_BOOL, bool(v))
    def add_array(self, key, elem_type, values): self.add(key, T_ARRAY, list(values), elem_type)

    # tensors
    def add_tensor(self, name, array, ggml_type):
        a = np.asarray(array)
        ne = list(reversed(a.shape))          # ne0 = innermost (row length)
        if ggml_type == GGML_F32:
            raw = np.ascontiguousarray(a, dtype="<f4").tobytes()
        elif ggml_type == GGML_F16:
            raw = np.ascontiguousarray(a, dtype="<f2").tobytes()
        elif ggml_type == GGML_Q8_0:
            raw = quantize_q8_0(a)
        elif ggml_type == GGML_BF16:
            if a.dtype != np.uint16:
                raise ValueError("BF16 tensors are given as uint16 bit patterns")
            raw = np.ascontiguousarray(a, dtype="<u2").tobytes()
        else:
            raise ValueError(f"unsupported ggml type {ggml_type}")
        if any(t[0] == name for t in self.tensors):
            raise ValueError(f"duplicate tensor {name}")
        self.tensors.append((name, ne, ggml_type, raw))

    def _value(self, vtype, v, elem_type=None):
        if vtype == T_STRING:
            return _gguf_str(v)
        if vtype == T_ARRAY:
            head = struct.pack("<IQ", elem_type, len(v))
            if elem_type == T_STRING:
                return head + b"".join(_gguf_str(s) for s in v)
            if elem_type == T_ARRAY:
                raise ValueError("nested arrays are not supported")
            return head + np.asarray(v, dtype=_NP_DTYPE[elem_type]).tobytes()
        return struct.pack(_SCALAR_FMT[vtype], v)

    def write(self, path):
        keys = [k for k, *_ in self.kv]
        if "general.alignment" not in keys:
            self.add_uint32("general.alignment", self.alignment)
        parts = [GGUF_MAGIC, struct.pack("<IQQ", GGUF_VERSION, len(self.tensors), len(self.kv))]
        for key, vtype, v, et in self.kv:
            parts.append(_gguf_str(key) + struct.pack("<I", vtype) + self._value(vtype, v, et))
        offset = 0
        offsets = []
        for name, ne, gt, raw in self.tensors:
            offsets.append(offset)
            parts.append(_gguf_str(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne)
                         + struct.pack("<IQ", gt, offset))
            offset += len(raw)
            offset += (-offset) % self.alignment
        head = b"".join(parts)
        pad = (-len(head)) % self.alignment
        with open(path, "wb") as f:
            f.write(head)
            f.write(b"\0" * pad)
            for (name, ne, gt, raw), off in zip(self.tensors, offsets):
                f.write(raw)
                f.write(b"\0" * ((-len(raw)) % self.alignment))
        return path


# ---------------------------------------------------------------------------------------------- reader

class GGUFFile:
    """Reads a GGUF file written by any writer (v2/v3): .meta {key: value}, .tensors {name: info}."""

    def __init__(self, path):
        self.path = path
        self.data = open(path, "rb").read()
        self.p = 0
        if self.data[:4] != GGUF_MAGIC:
            raise ValueError("not a GGUF file")
        self.p = 4
        self.version, n_tensors, n_kv = struct.unpack_from("<IQQ", self.data, self.p)
        self.p += 20
        self.meta = {}
        self.meta_types = {}
        for _ in range(n_kv):
            key = self._str()
            vtype = self._u32()
            self.meta[key] = self._read_value(vtype)
            self.meta_types[key] = vtype
        self.tensors = {}
        order = []
        for _ in range(n_tensors):
            name = self._str()
            nd = self._u32()
            ne = list(struct.unpack_from(f"<{nd}Q", self.data, self.p))
            self.p += 8 * nd
            gt = self._u32()
            off = struct.unpack_from("<Q", self.data, self.p)[0]
            self.p += 8
            self.tensors[name] = {"ne": ne, "type": gt, "offset": off}
            order.append(name)
        self.order = order
        align = int(self.meta.get("general.alignment", ALIGNMENT))
        self.data_start = self.p + ((-self.p) % align)

    def _u32(self):
        v = struct.unpack_from("<I", self.data, self.p)[0]
        self.p += 4
        return v

    def _str(self):
        n = struct.unpack_from("<Q", self.data, self.p)[0]
        self.p += 8
        s = self.data[self.p:self.p + n].decode("utf-8")
        self.p += n
        return s

    def _read_value(self, vtype):
        if vtype == T_STRING:
            return self._str()
        if vtype == T_ARRAY:
            et = self._u32()
            n = struct.unpack_from("<Q", self.data, self.p)[0]
            self.p += 8
            if et == T_STRING:
                return [self._str() for _ in range(n)]
            if et == T_ARRAY:
                return [self._read_value(T_ARRAY) for _ in range(n)]
            dt = np.dtype(_NP_DTYPE[et])
            a = np.frombuffer(self.data, dtype=dt, count=n, offset=self.p)
            self.p += n * dt.itemsize
            return a.astype(bool).tolist() if et == T_BOOL else a.tolist()
        fmt = _SCALAR_FMT[vtype]
        v = struct.unpack_from(fmt, self.data, self.p)[0]
        self.p += struct.calcsize(fmt)
        return v

    def tensor(self, name):
        """float32 numpy array in numpy order (reversed ne)."""
        t = self.tensors[name]
        shape = tuple(reversed(t["ne"]))
        n = int(np.prod(shape))
        start = self.data_start + t["offset"]
        if t["type"] == GGML_F32:
            return np.frombuffer(self.data, dtype="<f4", count=n, offset=start).reshape(shape).copy()
        if t["type"] == GGML_F16:
            return np.frombuffer(self.data, dtype="<f2", count=n, offset=start).astype(np.float32).reshape(shape)
        if t["type"] == GGML_Q8_0:
            nbytes = n // QK8_0 * Q8_0_BLOCK_BYTES
            return dequantize_q8_0(self.data[start:start + nbytes], shape)
        raise ValueError(f"tensor {name}: unsupported type {t['type']}")


# ---------------------------------------------------------------------------------------------- llama export

def sp_bpe_vocab(tokenizer_json_path):
    """tokens (id order), scores, token types and merges from a SentencePiece-style BPE tokenizer.json."""
    tj = json.load(open(tokenizer_json_path, encoding="utf-8"))
    model = tj["model"]
    if model.get("type") != "BPE":
        raise ValueError("expected a BPE tokenizer.json")
    vocab = dict(model["vocab"])
    for at in tj.get("added_tokens", []):
        vocab[at["content"]] = at["id"]
    n = max(vocab.values()) + 1
    tokens = [None] * n
    for t, i in vocab.items():
        tokens[i] = t
    if any(t is None for t in tokens):
        raise ValueError("vocabulary ids are not contiguous")
    special = {at["content"] for at in tj.get("added_tokens", []) if at.get("special")}
    unk = model.get("unk_token")
    types, scores = [], []
    for i, t in enumerate(tokens):
        if t == unk:
            types.append(2)
            scores.append(0.0)
        elif t in special:
            types.append(3)
            scores.append(0.0)
        elif len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
            types.append(6)
            scores.append(0.0)
        else:
            types.append(1)
            scores.append(-float(i))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return tokens, scores, types, merges


def write_llama_gguf(path, weights, cfg, tokenizer_json, chat_template, name, extra_meta=(),
                     qtype=GGML_Q8_0):
    """weights: dict of HF-named float32 numpy arrays (model.embed_tokens.weight, model.layers.N.*,
    model.norm.weight; tied embeddings: no lm_head.weight). cfg: dict with hidden_size, num_hidden_layers,
    intermediate_size, num_attention_heads, num_key_value_heads, head_dim, rms_norm_eps, rope_theta,
    context_length. extra_meta: iterable of (key, type, value[, elem_type])."""
    w = GGUFWriter()
    w.add_string("general.architecture", "llama")
    w.add_string("general.name", name)
    w.add_uint32("general.alignment", ALIGNMENT)
    w.add_uint32("general.file_type", 7 if qtype == GGML_Q8_0 else (1 if qtype == GGML_F16 else 0))
    w.add_uint32("general.quantization_version", 2)
    w.add_uint32("llama.context_length", cfg["context_length"])
    w.add_uint32("llama.embedding_length", cfg["hidden_size"])
    w.add_uint32("llama.block_count", cfg["num_hidden_layers"])
    w.add_uint32("llama.feed_forward_length", cfg["intermediate_size"])
    w.add_uint32("llama.attention.head_count", cfg["num_attention_heads"])
    w.add_uint32("llama.attention.head_count_kv", cfg["num_key_value_heads"])
    w.add_float32("llama.attention.layer_norm_rms_epsilon", cfg["rms_norm_eps"])
    w.add_float32("llama.rope.freq_base", cfg["rope_theta"])
    w.add_uint32("llama.rope.dimension_count", cfg["head_dim"])
    w.add_uint32("llama.attention.key_length", cfg["head_dim"])
    w.add_uint32("llama.attention.value_length", cfg["head_dim"])
    tokens, scores, types, merges = sp_bpe_vocab(tokenizer_json)
    w.add_uint32("llama.vocab_size", len(tokens))
    w.add_string("tokenizer.ggml.model", "llama")
    w.add_array("tokenizer.ggml.tokens", T_STRING, tokens)
    w.add_array("tokenizer.ggml.scores", T_FLOAT32, scores)
    w.add_array("tokenizer.ggml.token_type", T_INT32, types)
    w.add_array("tokenizer.ggml.merges", T_STRING, merges)
    w.add_uint32("tokenizer.ggml.bos_token_id", 1)
    w.add_uint32("tokenizer.ggml.eos_token_id", 2)
    w.add_uint32("tokenizer.ggml.unknown_token_id", 0)
    w.add_bool("tokenizer.ggml.add_bos_token", True)
    w.add_bool("tokenizer.ggml.add_eos_token", False)
    w.add_bool("tokenizer.ggml.add_space_prefix", True)
    w.add_string("tokenizer.chat_template", chat_template)
    for item in extra_meta:
        w.add(*item)

    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]

    def q(a):
        return qtype if a.ndim == 2 else GGML_F32

    emb = weights["model.embed_tokens.weight"]
    w.add_tensor("token_embd.weight", emb, qtype)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w.add_tensor(f"blk.{i}.attn_norm.weight", weights[p + "input_layernorm.weight"], GGML_F32)
        wq = llama_permute_qk(weights[p + "self_attn.q_proj.weight"], nh)
        wk = llama_permute_qk(weights[p + "self_attn.k_proj.weight"], nkv)
        w.add_tensor(f"blk.{i}.attn_q.weight", wq, q(wq))
        w.add_tensor(f"blk.{i}.attn_k.weight", wk, q(wk))
        w.add_tensor(f"blk.{i}.attn_v.weight", weights[p + "self_attn.v_proj.weight"], qtype)
        w.add_tensor(f"blk.{i}.attn_output.weight", weights[p + "self_attn.o_proj.weight"], qtype)
        w.add_tensor(f"blk.{i}.ffn_norm.weight", weights[p + "post_attention_layernorm.weight"], GGML_F32)
        w.add_tensor(f"blk.{i}.ffn_gate.weight", weights[p + "mlp.gate_proj.weight"], qtype)
        w.add_tensor(f"blk.{i}.ffn_up.weight", weights[p + "mlp.up_proj.weight"], qtype)
        w.add_tensor(f"blk.{i}.ffn_down.weight", weights[p + "mlp.down_proj.weight"], qtype)
    w.add_tensor("output_norm.weight", weights["model.norm.weight"], GGML_F32)
    if "lm_head.weight" in weights:
        w.add_tensor("output.weight", weights["lm_head.weight"], qtype)
    return w.write(path)


def read_llama_gguf_as_hf(path):
    """Dequantised HF-named float32 weights from a llama GGUF (inverse of write_llama_gguf)."""
    g = GGUFFile(path)
    m = g.meta
    nh, nkv = m["llama.attention.head_count"], m["llama.attention.head_count_kv"]
    out = {"model.embed_tokens.weight": g.tensor("token_embd.weight"),
           "model.norm.weight": g.tensor("output_norm.weight")}
    if "output.weight" in g.tensors:
        out["lm_head.weight"] = g.tensor("output.weight")
    for i in range(m["llama.block_count"]):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = g.tensor(f"blk.{i}.attn_norm.weight")
        out[p + "self_attn.q_proj.weight"] = llama_unpermute_qk(g.tensor(f"blk.{i}.attn_q.weight"), nh)
        out[p + "self_attn.k_proj.weight"] = llama_unpermute_qk(g.tensor(f"blk.{i}.attn_k.weight"), nkv)
        out[p + "self_attn.v_proj.weight"] = g.tensor(f"blk.{i}.attn_v.weight")
        out[p + "self_attn.o_proj.weight"] = g.tensor(f"blk.{i}.attn_output.weight")
        out[p + "post_attention_layernorm.weight"] = g.tensor(f"blk.{i}.ffn_norm.weight")
        out[p + "mlp.gate_proj.weight"] = g.tensor(f"blk.{i}.ffn_gate.weight")
        out[p + "mlp.up_proj.weight"] = g.tensor(f"blk.{i}.ffn_up.weight")
        out[p + "mlp.down_proj.weight"] = g.tensor(f"blk.{i}.ffn_down.weight")
    return out, m


def _main(argv):
    g = GGUFFile(argv[1])
    print(f"GGUF v{g.version}, {len(g.meta)} metadata keys, {len(g.tensors)} tensors, data at {g.data_start}")
    for k, v in g.meta.items():
        if isinstance(v, list):
            print(f"  {k}: [{len(v)}] {v[:5]}...")
        elif isinstance(v, str) and len(v) > 200:
            print(f"  {k}: {v[:200]!r}...")
        else:
            print(f"  {k}: {v!r}")
    for name in g.order:
        t = g.tensors[name]
        print(f"  {name}: ne={t['ne']} {TYPE_NAMES.get(t['type'], t['type'])} @ {t['offset']}")


if __name__ == "__main__":
    _main(sys.argv)
