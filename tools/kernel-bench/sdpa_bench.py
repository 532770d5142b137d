"""PyTorch's scaled_dot_product_attention on the shapes attention_tc_bench.cu times: a chunk of 4096
queries at token S against every earlier key (causal, aligned to the last key), Llama-3-8B heads
(32 query heads, 8 KV heads of width 128, bf16), and a whole causal square. The peer figure for the
dense plans. Prints a table and writes JSON (argv[1])."""
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention.bias import causal_lower_right

QH, KVH, D, CHUNK = 32, 8, 128, 4096


def timed(fn, reps=10):
    fn()
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / reps


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "sdpa_bench.json"
    rows = []
    print("| case | queries | keys | ms | TFLOP/s |\n| --- | ---: | ---: | ---: | ---: |")
    for name, start, queries in [("chunk", 4096, CHUNK), ("chunk", 28672, CHUNK), ("square", 0, 8192),
                                 ("square", 0, 32768)]:
        keys = start + queries
        q = torch.randn(1, QH, queries, D, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(1, QH, keys, D, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(1, QH, keys, D, device="cuda", dtype=torch.bfloat16)
        if start == 0:
            ms = timed(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
        else:
            mask = causal_lower_right(queries, keys)
            ms = timed(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
        pairs = QH * sum(start + i + 1 for i in range(queries))
        tflops = 4 * D * pairs / (ms * 1e-3) / 1e12
        print(f"| {name} | {queries} | {keys} | {ms:.3f} | {tflops:.1f} |")
        rows.append({"case": name, "start": start, "queries": queries, "ms": ms, "tflops": tflops})
    json.dump({"torch": torch.__version__, "device": torch.cuda.get_device_name(), "rows": rows},
              open(out, "w"), indent=1)


if __name__ == "__main__":
    main()
