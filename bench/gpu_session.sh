#!/usr/bin/env bash
# Every open GPU measurement in one prepared run (at most 6.5 minutes), for a session
# that is lent a GPU for a short time. Results (JSON + Markdown) go to OUT_DIR; copy them to
# bench/results/ and commit them with the GPU's name.
#
#   bash bench/gpu_session.sh OUT_DIR            # on the GPU machine
#   bash bench/gpu_session.sh OUT_DIR --smoke    # CPU, tiny sizes: checks the script itself
#
# Measurements (each bounded by its own timeout, so one that runs long does not take the others):
#   1. train_step_bench.py: the runner's training step against the model-alone bound, MLRC recipe
#      (BN-Inception 227 px, batch 32) and ResNet50 batch 128, with compile_models and 2 concurrent
#      trials (issue 17's targets: step >= 85 % of the bound at batch 128; 2 trials on one GPU
#      >= 2x one trial's images/s at batch 32).
#   2. avsl_rank_bench.py: test-time ranking by AVSL's D, 20,000 samples, then SOP-sized (60,502).
#
# Packages: the GPU image has torch, torchvision, tensorboard, tqdm, scipy and matplotlib but not
# pytorch-metric-learning. Where pip works, put its wheel in .whl/ (ignored by git) and carry it:
#   python3 -m pip download --no-deps pytorch-metric-learning==2.9.0 -d .whl
# This script installs every wheel in .whl/ into /tmp/site first.
set -u
out=${1:?usage: bash bench/gpu_session.sh OUT_DIR [--smoke]}
smoke=${2:-}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}

if compgen -G ".whl/*.whl" >/dev/null; then
    $python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
missing=$($python - <<'EOF'
import importlib
names = ["torch", "torchvision", "pytorch_metric_learning", "tensorboard", "tqdm", "scipy", "yaml", "numpy"]
print(" ".join(n for n in names if importlib.util.find_spec(n) is None))
EOF
)
if [ -n "$missing" ]; then
    echo "gpu_session: missing Python packages: $missing (carry their wheels in .whl/, see the header)" >&2
    exit 2
fi

if [ "$smoke" = "--smoke" ]; then
    device=cpu
    step_args=(--recipes r50 --iterations 2 --warmup 1 --size 64 --trials 2)
    avsl_sizes=(200)
else
    device=cuda
    step_args=(--iterations 30 --warmup 10 --compile --trials 2)
    avsl_sizes=(20000 60502)
fi
gpu=$($python -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')")
echo "gpu_session: device $device ($gpu), torch $($python -c 'import torch; print(torch.__version__)')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | tee "$out/gpu.txt"

status=0
echo "== 1. training step vs bound"
timeout 240 $python bench/train_step_bench.py --device "$device" "${step_args[@]}" \
    --note "bench/gpu_session.sh on $gpu" --out "$out/train_step_gpu.json" || status=1
for samples in "${avsl_sizes[@]}"; do
    echo "== 2. AVSL ranking, $samples samples"
    limit=$(( samples > 20000 ? 90 : 60 ))
    timeout $limit $python bench/avsl_rank_bench.py --samples "$samples" --device "$device" \
        --out "$out/avsl_rank_${samples}.json" || status=1
done
ls -l "$out"
exit $status
