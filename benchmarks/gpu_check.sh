#!/usr/bin/env bash
# Everything issue 22 leaves for a GPU, in one command sized for a 10-minute slot on one H100/H200:
#   1. the CUDA tests: FlexAttention forward and backward against the dense path for every variant with a FlexAttention
#      form (tests/models/test_flex_attention.py) and the count of host-device synchronisations in a forward
#      (tests/models/test_no_host_sync.py);
#   2. benchmarks/bench_gpu.py: every variant and transformers' BERT and ModernBERT at BERT-base, 128 and 1,024 tokens,
#      bf16 (extra arguments go to it, e.g. --steps 10 --variants alibi shaw rope).
# Logs and the benchmark's JSON go to $OUT (the device tool's folder) or benchmarks/results.
#
# The device image has torch, transformers and accelerate but not datasets or evaluate, which hf_posenc imports; carry
# them as wheels (see docs/speed.md, "Running the GPU checks").
set -uo pipefail
cd "$(dirname "$0")/.."
results="${OUT:-benchmarks/results}"
mkdir -p "$results"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 1
    export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__,
'device', torch.cuda.get_device_name() if torch.cuda.is_available() else 'none')" | tee "$results/versions.txt"

python3 -m pytest -q -p no:cacheprovider -k cuda tests/models/test_flex_attention.py tests/models/test_no_host_sync.py \
    2>&1 | tee "$results/cuda_tests.log"
tests_status=$?
python3 benchmarks/bench_gpu.py --output "$results/gpu.json" "$@" 2>&1 | tee "$results/bench_gpu.log"
bench_status=$?
echo "cuda tests exit $tests_status, benchmark exit $bench_status"
exit $((tests_status || bench_status))
