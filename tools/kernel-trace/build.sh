#!/usr/bin/env bash
# Builds /tmp/trace.so, a CUDA_INJECTION64_PATH library that writes every kernel's start, end and name
# (CUPTI activity records) to $TRACE_OUT, against the CUPTI of the GPU machine (which has no nsys):
#   bash tools/kernel-trace/build.sh
#   CUDA_INJECTION64_PATH=/tmp/trace.so TRACE_OUT=/tmp/tr.txt bash .gpu-long/remote.sh java ... CudaDecodeBenchmark ...
#   (TRACE_API=1 adds the host's driver calls)
#   python3 tools/kernel-trace/timeline.py /tmp/tr.txt
H=$(find /usr/local/cuda*/ -name cupti.h 2>/dev/null | head -1)
L=$(find /usr/local/cuda*/ -name "libcupti.so*" 2>/dev/null | head -1)
echo "CUPTI: $H $L"
# The kernel record's struct is versioned; the newest the header has is the one the library writes.
for v in 12 11 10 9; do
  if gcc -shared -fPIC -O2 -DKREC=CUpti_ActivityKernel$v -I"$(dirname "$H")" -I/usr/local/cuda/include -o /tmp/trace.so \
      "$(dirname "$0")/trace.c" "$L" -Wl,-rpath,"$(dirname "$L")" -lpthread 2>/dev/null; then
    echo "built /tmp/trace.so with CUpti_ActivityKernel$v"
    exit 0
  fi
done
echo "no CUPTI kernel record type compiled" >&2
exit 1
