#!/usr/bin/env bash
# Selma on the GPU machine (run from the checkout root, with .gpu-long built as docs/benchmarks.md says):
# stages given as arguments, e.g. `bash tools/gpu-long-run.sh tests decode` after a kernel change;
# `tests decode prefill 1m` on an H200 is the job behind docs/benchmarks.md's H200 tables.
set -o pipefail
out=${OUT:-/tmp}
J="java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx24g -cp .gpu-long/lib/*:.gpu-long/lib/test-classes"
R="bash .gpu-long/remote.sh"
M=demo-corpus/selma-demo.gguf
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee -a $out/gpu.txt
for stage in "$@"; do
  echo "=== $stage $(date +%T)" | tee -a $out/log.txt
  case $stage in
    tests) timeout 300 $R $J -Dselma.cuda.checkLaunches=true org.junit.platform.console.ConsoleLauncher \
        --include-tag gpu --select-class dev.selma.engine.backend.cuda.CudaBackendTest \
        --select-class dev.selma.engine.backend.cuda.CudaHuggingFaceParityTest \
        --select-class dev.selma.engine.backend.cuda.CudaPrefixCacheTest \
        --select-class dev.selma.engine.backend.cuda.CudaPrefixCacheFp8Test --details=tree 2>&1 \
        | grep -v "^WARNING\|^\s*at " > $out/tests.txt
      grep -E "tests (successful|failed)|✘" $out/tests.txt | tee -a $out/log.txt
      # Checked launches record no CUDA graph: the graph test once more, recording.
      timeout 120 $R $J org.junit.platform.console.ConsoleLauncher --include-tag gpu --select-method \
        dev.selma.engine.backend.cuda.CudaBackendTest#decodeStepsReplayedFromCudaGraphsEqualStepsLaunchedOneByOne \
        --details=tree 2>&1 | grep -v "^WARNING\|^\s*at " > $out/tests-graphs.txt
      grep -E "tests (successful|failed)|✘" $out/tests-graphs.txt | tee -a $out/log.txt ;;
    decode) # Llama-3-8B shapes (bf16, Q8_0, Q4_0, Q4_K; 4K dense, 128K select-and-merge bound and query) and
      # Llama-3.2-1B, dummy weights
      for a in "llama-3-8b 4096 64 0 4096" "llama-3-8b 4096 64 0 512 specialised dense auto q8_0" \
          "llama-3-8b 4096 64 0 512 specialised dense auto q4_0" "llama-3-8b 4096 64 0 512 specialised dense auto q4_k" \
          "llama-3-8b 131072 16 0 4096 specialised select-merge-bound-reindexed" \
          "llama-3-8b 131072 16 0 4096 specialised select-merge-query-reindexed" "llama-3.2-1b 4096 64 0 4096"; do
        timeout 150 $R $J dev.selma.engine.backend.cuda.CudaDecodeBenchmark $a 2>&1 | grep -E "decode at|prefill [0-9]" \
          | sed "s/^/$a: /" | tee -a $out/log.txt
      done ;;
    prefill) # Llama-3-8B prefill, dense and select-and-merge, then the PyTorch peer in the same job
      for a in "8192 16 0 4096" "32768 16 0 4096" "32768 16 0 4096 specialised select-merge-bound-reindexed" \
          "131072 16 0 4096 specialised select-merge-bound-reindexed" "131072 8 0 4096"; do
        timeout 200 $R $J -Dselma.bench.json=$out/selma.jsonl dev.selma.engine.backend.cuda.CudaDecodeBenchmark \
          llama-3-8b $a 2>&1 | grep -E "decode at|prefill [0-9]" | sed "s/^/$a: /" | tee -a $out/log.txt
      done
      timeout 400 python3 tools/torch_llama_bench.py --arch llama-3-8b --prefill 8192,32768,131072 \
        --decode-context 4096 --out $out/torch.json 2>&1 | grep -v Warning | tail -6 | tee -a $out/log.txt ;;
    1m) # one million tokens, fp8 pages: needs an H200
      timeout 300 $R $J -Dselma.bench.json=$out/1m.jsonl dev.selma.engine.backend.cuda.CudaDecodeBenchmark llama-3-8b \
        1048576 16 0 4096 specialised select-merge-bound-reindexed fp8 2>&1 | grep -E "decode at|prefill [0-9]|peak" \
        | tee -a $out/log.txt ;;
    profile) timeout 120 $R $J -Dselma.cuda.profile=true dev.selma.engine.backend.cuda.CudaLongContextBenchmark $M \
        131072 select-merge-reindexed 4096 2>&1 | grep -v "^WARNING" | tee -a $out/log.txt ;;
    bench) timeout 240 $R $J dev.selma.engine.backend.cuda.CudaLongContextBenchmark $M \
        32768,131072,1048576 select-merge-reindexed 4096 2>&1 | grep -v "^WARNING" | tee -a $out/log.txt
      timeout 120 $R $J dev.selma.engine.backend.cuda.CudaLongContextBenchmark $M \
        32768 dense 4096 2>&1 | grep -v "^WARNING" | tee -a $out/log.txt ;;
    eval-quick) timeout 200 $R $J dev.selma.engine.cli.Selma eval -m $M --backend cuda --prefill-chunk 4096 \
        --lengths 4096,131072,1048576 --depths 0.1,0.9 --needles 1 --schemes select-merge-reindexed \
        --out $out/eval-quick 2>&1 | grep -v "^WARNING" | tee -a $out/log.txt ;;
    eval-passkey) timeout 300 $R $J dev.selma.engine.cli.Selma eval -m $M --backend cuda --prefill-chunk 4096 \
        --tasks passkey --lengths 4096,32768,131072,1048576 --depths 0,0.25,0.5,0.75,1 --needles 4 \
        --schemes dense@32768,self-extend@32768,select-merge-reindexed,select-merge-self-extend@131072 \
        --out $out/passkey 2>&1 | grep -v "^WARNING" | tee -a $out/log.txt ;;
    eval-multikey) timeout 90 $R $J dev.selma.engine.cli.Selma eval -m $M --backend cuda --prefill-chunk 4096 \
        --tasks niah-multikey --haystack demo-corpus/documents --lengths 32768,131072 --depths 0,0.25,0.5,0.75,1 \
        --needles 4 --schemes select-merge-reindexed,self-extend@32768 \
        --out $out/multikey 2>&1 | grep -v "^WARNING" | tee -a $out/log.txt ;;
    eval-se128) timeout 80 $R $J dev.selma.engine.cli.Selma eval -m $M --backend cuda --prefill-chunk 4096 \
        --tasks passkey --lengths 131072 --depths 0,0.25,0.5,0.75,1 --needles 1 --schemes self-extend \
        --out $out/se128 2>&1 | grep -v "^WARNING" | tee -a $out/log.txt ;;
  esac
done
