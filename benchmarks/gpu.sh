#!/usr/bin/env bash
# One prepared run for a lent GPU machine (UNTESTED on a GPU: written on a CPU-only machine).
# Runs P5 (alignment loss), P2 (method cost) and the real-size body step times (P7) on the GPU,
# within about 8 minutes, and writes every result into one folder:
#   $OUT if set, else benchmarks/results/gpu-<date>.
# Usage: bash benchmarks/gpu.sh            (from the repository root)
set -u
cd "$(dirname "$0")/.."
DEST="${OUT:-benchmarks/results/gpu-$(date +%Y-%m-%d)}"
mkdir -p "$DEST"
LOG="$DEST/gpu-run.log"
DEV="${DEVICE:-cuda}"
export PYTHONUNBUFFERED=1
{
  echo "== gpu.sh $(date -u +%FT%TZ) on $(hostname); dest $DEST"
  uptime; nproc
  nvidia-smi --query-gpu=name,memory.total,driver_version,utilization.gpu --format=csv || true
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
} 2>&1 | tee "$LOG"
if ! python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA device visible: stopping (nothing measured)" | tee -a "$LOG"; exit 2
fi
rc=0
step() {  # step <seconds> <description> <command...>: each step has its own time limit
  local limit=$1 what=$2; shift 2
  echo "== $what (limit ${limit}s): $*" | tee -a "$LOG"
  local t0=$SECONDS
  timeout --signal=INT --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$LOG"
  local s=${PIPESTATUS[0]}
  echo "== $what: exit $s after $((SECONDS - t0)) s" | tee -a "$LOG"
  [ "$s" -eq 0 ] || rc=1
}
# body step times first: the figure only a GPU machine can give (about 1 min)
step 100 "P7 body step, fp32" python benchmarks/p7_body_step.py --device "$DEV" --out "$DEST"
step 80  "P7 body step, bf16 autocast" python benchmarks/p7_body_step.py --device "$DEV" --amp --out "$DEST" --steps 10
# alignment losses, all four sizes, GPU tensors: the torch solver and POT (on torch tensors)
step 170 "P5 alignment" python benchmarks/p5_alignment.py --device "$DEV" --out "$DEST" --repeats 2
# method cost: quick profile, one repeat, both stages on the device
step 120 "P2 method cost" python benchmarks/p2_method_cost.py --quick --device "$DEV" --out "$DEST"
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv >> "$LOG" 2>&1 || true
echo "== done $(date -u +%FT%TZ), rc $rc; results in $DEST" | tee -a "$LOG"
ls -l "$DEST" | tee -a "$LOG"
exit $rc
