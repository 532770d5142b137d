#!/usr/bin/env python3
"""The PyTorch + transformers peer of Selma's GPU benchmarks, run on the same GPU in the same job.

Builds a Llama of a real architecture's shapes with random bf16 weights (no file: the same idea as
Selma's dummy weights), SDPA attention, and measures, at batch 1:
  - copy bandwidth (device to device, bytes read + written) and cuBLAS bf16 GEMM peak: the floors;
  - prefill of N tokens (one forward over the whole prompt, logits of the last token only);
  - decode at a context: median time of one token with the KV cache of the prefill.
Prints a table and writes JSON.

    python3 tools/torch_llama_bench.py --arch llama-3-8b --prefill 8192,32768 --decode-context 4096 \
        --out results.json
"""
import argparse
import json
import statistics
import time

import torch

ARCHS = {
    # hidden, intermediate, layers, heads, kv heads, vocab, rope theta
    "llama-3-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                       num_key_value_heads=8, vocab_size=128256, rope_theta=500000.0),
}


def timed(fn, repeats):
    out = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        out.append(time.perf_counter() - t0)
    return out


def copy_bandwidth(gib=4, repeats=10):
    n = gib << 30
    src = torch.empty(n, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    t = statistics.median(timed(lambda: dst.copy_(src), repeats))
    del src, dst
    return 2 * n / t / 1e9


def gemm_peak(m=8192, n=8192, k=8192, repeats=20):
    a = torch.randn(m, k, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(k, n, dtype=torch.bfloat16, device="cuda")
    torch.matmul(a, b)
    t = statistics.median(timed(lambda: torch.matmul(a, b), repeats))
    return 2 * m * n * k / t / 1e12


def build(arch, context):
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(**ARCHS[arch], max_position_embeddings=max(context, 8192), rms_norm_eps=1e-5,
                      tie_word_embeddings=False, attn_implementation="sdpa", torch_dtype=torch.bfloat16)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.eval()
    return model


def last_logits(model, ids, past=None):
    kwargs = dict(input_ids=ids, use_cache=True, past_key_values=past)
    try:
        return model(**kwargs, logits_to_keep=1)
    except TypeError:  # older transformers
        return model(**kwargs, num_logits_to_keep=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="llama-3-8b")
    ap.add_argument("--prefill", default="8192,32768,131072", help="prompt lengths to prefill")
    ap.add_argument("--decode-context", type=int, default=4096)
    ap.add_argument("--decode-steps", type=int, default=64)
    ap.add_argument("--out", default="torch-bench.json")
    args = ap.parse_args()
    import transformers
    res = dict(device=torch.cuda.get_device_name(0), torch=torch.__version__, transformers=transformers.__version__,
               arch=args.arch)
    res["copy_gbps"] = copy_bandwidth()
    res["gemm_bf16_tflops"] = gemm_peak()
    print(f"{res['device']}: copy {res['copy_gbps']:.0f} GB/s, cuBLAS bf16 GEMM {res['gemm_bf16_tflops']:.0f} TFLOP/s")
    lengths = [int(x) for x in args.prefill.split(",") if x]
    model = build(args.arch, max(lengths + [args.decode_context + args.decode_steps]))
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    res["weight_bytes"] = weights
    torch.cuda.synchronize()
    res["prefill"] = {}
    with torch.inference_mode():
        warm = torch.randint(0, model.config.vocab_size, (1, 512), device="cuda")
        last_logits(model, warm)
        for n in lengths:
            ids = torch.randint(0, model.config.vocab_size, (1, n), device="cuda")
            torch.cuda.reset_peak_memory_stats()
            try:
                t = timed(lambda: last_logits(model, ids), 2)[-1]
                res["prefill"][n] = dict(seconds=t, tokens_per_s=n / t,
                                         peak_gib=torch.cuda.max_memory_allocated() / 2**30)
                print(f"prefill {n}: {t:.2f} s ({n / t:.0f} tokens/s), peak {res['prefill'][n]['peak_gib']:.1f} GiB")
            except torch.cuda.OutOfMemoryError as e:
                res["prefill"][n] = dict(error="out of memory")
                print(f"prefill {n}: out of memory")
            torch.cuda.empty_cache()
        ids = torch.randint(0, model.config.vocab_size, (1, args.decode_context), device="cuda")
        out = last_logits(model, ids)
        past = out.past_key_values
        token = out.logits[:, -1:].argmax(-1)
        steps = []
        for _ in range(args.decode_steps):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = last_logits(model, token, past)
            past = out.past_key_values
            token = out.logits[:, -1:].argmax(-1)
            torch.cuda.synchronize()
            steps.append(time.perf_counter() - t0)
        ms = statistics.median(steps) * 1e3
        res["decode"] = dict(context=args.decode_context, ms=ms, tokens_per_s=1e3 / ms)
        floor = (weights - 2 * model.config.vocab_size * model.config.hidden_size) / (res["copy_gbps"] * 1e9) * 1e3
        res["decode"]["floor_ms"] = floor
        print(f"decode at {args.decode_context}: {ms:.2f} ms/token ({1e3 / ms:.1f} tokens/s), "
              f"floor {floor:.2f} ms ({100 * floor / ms:.0f} % of it)")
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
