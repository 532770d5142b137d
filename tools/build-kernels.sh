#!/usr/bin/env bash
# Compiles the CUDA kernels (engine/src/main/cuda/*.cu) into the one fatbin the engine ships, with
# machine code for sm_80, sm_86, sm_89 and sm_90a and compute_80 PTX for later GPUs, and writes a
# manifest with the SHA-256 of every source and of the fatbin. KernelManifestTest fails when a source
# changed without a rebuild. Needs nvcc 13 (PTX from it needs a driver >= 580, which the engine checks).
#
#   tools/build-kernels.sh [path/to/nvcc]
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
nvcc=${1:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
src=$top/engine/src/main/cuda
out=$top/engine/src/main/resources/dev/selma/engine/backend/cuda
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One translation unit that includes every kernel file: a module is one fatbin, and each file keeps
# one responsibility. Kernels are extern "C" so the host finds them by their plain names.
unit=$tmp/selma_kernels.cu
: >"$unit"
for f in "$src"/*.cu; do echo "#include \"$f\"" >>"$unit"; done

"$nvcc" -fatbin -O3 -std=c++17 -I"$src" \
  -gencode arch=compute_80,code=sm_80 \
  -gencode arch=compute_86,code=sm_86 \
  -gencode arch=compute_89,code=sm_89 \
  -gencode arch=compute_90a,code=sm_90a \
  -gencode arch=compute_80,code=compute_80 \
  --compress-mode=size -o "$out/kernels.fatbin" "$unit"

{
  echo "# SHA-256 of the kernel sources the fatbin was built from (tools/build-kernels.sh)."
  echo "# nvcc: $("$nvcc" --version | sed -n 's/^Cuda compilation tools, //p')"
  (cd "$src" && for f in $(ls *.cu *.cuh | LC_ALL=C sort); do echo "source $f $(sha256sum "$f" | cut -d' ' -f1)"; done)
  echo "fatbin kernels.fatbin $(sha256sum "$out/kernels.fatbin" | cut -d' ' -f1)"
} >"$out/kernels.manifest"
echo "build-kernels.sh: $(du -h "$out/kernels.fatbin" | cut -f1) fatbin, $(grep -c '^source' "$out/kernels.manifest") sources"
