#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a bounded time on seed
# corpora made from the repo's models and fixtures. Usage: tests/fuzz/run_fuzzers.sh SECONDS [BUILD_DIR]
set -euo pipefail
seconds=${1:-60}
build=${2:-build-fuzz}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSWITCHYARD_FUZZ=ON \
  -DSWITCHYARD_PYTHON=OFF -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j 2 --target fuzz_model fuzz_npy fuzz_npz fuzz_http_infer
corpus="$build/corpus"
mkdir -p "$corpus/model" "$corpus/npy" "$corpus/npz" "$corpus/http_infer"
cp models/*.onnx tests/fixtures/*.onnx "$corpus/model/"
# The MoE export corpus (tests/corpus): every 8th model for a short run, all of them with FUZZ_CORPUS_ALL=1.
ls tests/corpus/*.onnx | awk -v all="${FUZZ_CORPUS_ALL:-0}" 'all == 1 || NR % 8 == 1' | xargs -I{} cp {} "$corpus/model/"
cp tests/fixtures/*.npz "$corpus/npz/"
python3 - "$corpus/npy" <<'PY'
import glob, io, sys, zipfile
for path in glob.glob("tests/fixtures/*.npz"):
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            open(f"{sys.argv[1]}/{path.split('/')[-1]}_{name}", "wb").write(z.read(name))
PY
# REST infer bodies: JSON tensors, binary tensor data (first line: Inference-Header-Content-Length).
python3 - "$corpus/http_infer" <<'PY'
import json, struct, sys
d = sys.argv[1]
image = [0.25] * 784
open(f"{d}/json", "w").write(json.dumps({"id": "a", "inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28],
                                         "data": image}], "outputs": [{"name": "logits"}]}))
header = json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [2, 1, 28, 28],
                                 "parameters": {"binary_data_size": 2 * 784 * 4}}],
                     "parameters": {"binary_data_output": True}})
open(f"{d}/binary", "wb").write(f"{len(header)}\n".encode() + header.encode() + struct.pack("<1568f", *([0.5] * 1568)))
PY
# Inputs the fuzzers once failed on (tests/fuzz/regressions) and the hostile catalogue join the corpora.
cp tests/fuzz/regressions/*.onnx "$corpus/model/"
[ -d tests/catalogue ] && cp tests/catalogue/*.onnx "$corpus/model/" 2>/dev/null || true
status=0
for target in model npy npz http_infer; do
  echo "== fuzz_$target for ${seconds}s"
  log="$build/fuzz_$target.log"
  if ASAN_OPTIONS=detect_leaks=1 "$build/fuzz_$target" "$corpus/$target" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$build/crash-$target-" >"$log" 2>&1; then
    grep -E "stat::number_of_executed_units|Done" "$log"
  else
    # Show the report (what was thrown or where it crashed) and the input, so a CI log is enough to fix it.
    status=1
    grep -n -m1 -B2 -A30 -E "ERROR|terminate called|deadly signal|timeout|out-of-memory" "$log" || tail -40 "$log"
    grep -E "^Base64:|Test unit written" "$log" || true
  fi
done
exit $status
