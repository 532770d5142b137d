#!/usr/bin/env bash
# Selma long context on the GPU machine (run from the checkout root): stages given as arguments.
set -o pipefail
out=${OUT:-/tmp}
J="java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx24g -cp .gpu-long/lib/*:.gpu-long/lib/test-classes"
R="bash .gpu-long/remote.sh"
M=demo-corpus/selma-demo.gguf
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee -a $out/gpu.txt
for stage in "$@"; do
  echo "=== $stage $(date +%T)" | tee -a $out/log.txt
  case $stage in
    tests) timeout 120 $R $J -Dselma.cuda.checkLaunches=true org.junit.platform.console.ConsoleLauncher \
        --include-tag gpu --select-class dev.selma.engine.backend.cuda.CudaBackendTest \
        --select-class dev.selma.engine.backend.cuda.CudaHuggingFaceParityTest --details=tree 2>&1 \
        | grep -v "^WARNING\|^\s*at " | tail -60 | tee -a $out/log.txt ;;
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
