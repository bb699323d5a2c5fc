#!/usr/bin/env bash
# The GPU machine's one command (see `cargo xtask gpu-check`), run from the
# repository root with .gpu-bin/ and .gpu-data/ carried. It runs the
# plaid-cuda tests with a GPU required, then the GPU-vs-CPU checks and
# timings on the debian-5k subset and a generated 10M-token corpus, and ends
# with the results table (`xtask gpu-eval`). Everything lands in $OUT.
set -u -o pipefail
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
B=$PWD/.gpu-bin
D=$PWD/.gpu-data
W=${TMPDIR:-/tmp}/plaid-gpu
rm -rf "$W"; mkdir -p "$W"
chmod +x "$B"/*
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }

LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/local/cuda/lib64; do
  [ -d "$d" ] && LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
for lib in libnvrtc.so.13 libcublas.so.13; do
  if ! ldconfig -p | grep -q "$lib" && ! ls /usr/local/cuda/lib64/$lib* >/dev/null 2>&1; then
    f=$(find /usr/local /opt -name "$lib*" 2>/dev/null | head -1)
    [ -n "$f" ] && LD_LIBRARY_PATH="$(dirname "$f"):$LD_LIBRARY_PATH"
  fi
done
export LD_LIBRARY_PATH
CARD=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)
echo "$CARD, $(nproc) CPU cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)" | tee "$W/card.txt"
ldd --version | head -1
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"

# The 10M-token corpus is generated (one core) while the rest runs.
( "$B/xtask" gen-data --tokens 10m --out "$W/g10m" --queries 1000 --gt-queries 100 > "$W/gen.json" 2>&1 ) &
GEN=$!

stamp "plaid-cuda tests (GPU required)"
rc=0
for t in "$B"/test-*; do
  echo "=== $t"
  ( cd crates/plaid-cuda && PLAID_CUDA_REQUIRE=1 timeout 150 "$t" --test-threads=1 --nocapture ) || rc=1
done
echo "tests rc=$rc"

P="timeout 150 $B/plaid"
q() { echo "--queries $D/queries_$1.npy --query-lens $D/lens_$1.npy"; }
stamp "debian-5k subset: builds"
$P index "$W/sub" --embeddings "$D/embeddings.npy" --doclens "$D/doclens.npy" --device cpu --json > "$W/build_sub_cpu.json" || rc=1
$P index "$W/subgpu" --embeddings "$D/embeddings.npy" --doclens "$D/doclens.npy" --device cuda --json > "$W/build_sub_gpu.json" || rc=1
tail -n1 "$W/build_sub_cpu.json" "$W/build_sub_gpu.json"
stamp "debian-5k subset: searches"
for qs in plain masked; do
  $P search "$W/sub" $(q $qs) --k 100 --device cpu --batch --repeats 2 --output "$W/s_sub_${qs}_cpu.npy" --json > "$W/s_sub_${qs}_cpu.json" || rc=1
  $P search "$W/subgpu" $(q $qs) --k 100 --device cpu --output "$W/s_subgpu_${qs}_cpu.npy" --json > "$W/s_subgpu_${qs}_cpu.json" || rc=1
  $P search "$W/sub" $(q $qs) --k 100 --device cuda --batch --repeats 3 --profile --output "$W/s_sub_${qs}_cuda.npy" --json > "$W/s_sub_${qs}_cuda.json" || rc=1
  $P search "$W/sub" $(q $qs) --k 100 --device cpu --exhaustive --output "$W/s_sub_${qs}_cpu_exh.npy" --json > "$W/s_sub_${qs}_cpu_exh.json" || rc=1
  $P search "$W/sub" $(q $qs) --k 100 --device cuda --exhaustive --batch --repeats 3 --output "$W/s_sub_${qs}_cuda_exh.npy" --json > "$W/s_sub_${qs}_cuda_exh.json" || rc=1
  # The GPU's exact stage is cheap: the same search scoring 4x more documents exactly.
  $P search "$W/sub" $(q $qs) --k 100 --device cuda --n-full-scores 8192 --batch --repeats 3 --output "$W/s_sub_${qs}_cuda_nfs8192.npy" --json > "$W/s_sub_${qs}_cuda_nfs8192.json" || rc=1
done
stamp "subset done"

stamp "waiting for the 10M corpus"
wait $GEN; cat "$W/gen.json"
G="$W/g10m"
stamp "10M: GPU build"
$P index "$W/g10gpu" --embeddings "$G/embeddings.npy" --doclens "$G/doclens.npy" --device cuda --json > "$W/build_g10_gpu.json" || rc=1
tail -n1 "$W/build_g10_gpu.json"
gq="--queries $G/queries.npy --query-lens $G/query_lens.npy --k 100"
stamp "10M: searches"
$P search "$W/g10gpu" $gq --device cuda --batch --repeats 3 --profile --output "$W/s_g10_plain_cuda.npy" --json > "$W/s_g10_plain_cuda.json" || rc=1
$P search "$W/g10gpu" $gq --device cuda --n-full-scores 8192 --batch --repeats 3 --output "$W/s_g10_plain_cuda_nfs8192.npy" --json > "$W/s_g10_plain_cuda_nfs8192.json" || rc=1
$P search "$W/g10gpu" $gq --max-queries 200 --device cpu --batch --output "$W/s_g10_plain_cpu.npy" --json > "$W/s_g10_plain_cpu.json" || rc=1
$P search "$W/g10gpu" $gq --max-queries 100 --device cuda --exhaustive --output "$W/s_g10_plain_cuda_exh.npy" --json > "$W/s_g10_plain_cuda_exh.json" || rc=1
"$B/xtask" gpu-eval "$W" "$D" "$G" | tee "$OUT/results-partial.md"

CPU_LIMIT=${CPU_LIMIT:-200}
if [ "$CPU_LIMIT" -gt 0 ]; then
  stamp "10M: CPU build, stopped after $CPU_LIMIT s"
  t1=$(date +%s)
  timeout "$CPU_LIMIT" "$B/plaid" index "$W/g10cpu" --embeddings "$G/embeddings.npy" --doclens "$G/doclens.npy" --device cpu --json > "$W/build_g10_cpu.json"
  crc=$?
  [ $crc -eq 124 ] && echo "$(( $(date +%s) - t1 ))" > "$W/build_g10_cpu.timeout"
  stamp "CPU build rc=$crc"
fi
"$B/xtask" gpu-eval "$W" "$D" "$G" | tee "$OUT/results.md"
tar czf "$OUT/runs.tgz" -C "$W" $(cd "$W" && ls *.json *.txt *.timeout 2>/dev/null) 2>/dev/null
stamp "done rc=$rc"
exit $rc
