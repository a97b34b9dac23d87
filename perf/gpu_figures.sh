#!/usr/bin/env bash
# The GPU figures of issue 16 in one run on one GPU (sized for an H100 80GB, about 7 minutes, 9 at
# most): the study's 506M pretraining step (perf/probe_throughput.py), ModernBERT-base scoring at
# max length 512 (perf/probe_classifier.py) and the SFT and DPO steps (perf/probe_posttrain.py), all
# on config/study.yaml's shapes with random weights (nothing is downloaded). Writes each part's rows
# as JSON and one log into "${OUT:-perf-out}", then prints one table with the card's name and the
# goals (pretraining >= 45% MFU, about 117k tokens/s on an H100; scoring >= 1M tokens/s).
#
#   perf/gpu_figures.sh            # from the repository root, on the GPU machine
#   perf/gpu_figures.sh --wheels   # where pip works: fetch the Python packages a bare GPU image lacks
#   perf/gpu_figures.sh --dry-run  # print the parts' commands, run nothing
#
# Each part runs under its own timeout, and the whole run under BUDGET_S seconds (default 510): a
# part is given min(its cap, what is left) and skipped when under MIN_PART_S (45) seconds are
# left. A part that fails or times out is reported and the next one runs; the probes write their
# JSON after every row, so a part cut short keeps the rows it finished; perf/gpu_figures_table.py
# prints the table and writes gpu_figures.json (7 files in all: the device tool brings back 8 at
# most). The budget leaves room for the checks before and the table after (~30 s) inside a 10-minute
# limit. Parts, most important first, with the time each is expected to take on an H100 (process
# start and imports included):
#
#   pretrain_eager     ~75 s (cap 110): eager bf16, micro-batch 4 and 8, checkpointing on and
#                      off; 2 warm-up + 6 timed optimizer steps of 64 x 2047 tokens per setting
#   pretrain_compiled  ~100 s (cap 160): the study's setting (micro 4, checkpointing on), compiled;
#                      the warm-up steps absorb torch.compile's ~60 s
#   classifier         ~80 s (cap 120): ModernBERT-base shape, max_length 512, batch 256, eager and
#                      compiled; 1 warm-up + 3 timed windows of 2,048 documents
#   posttrain          ~90 s (cap 150): SFT then DPO, batch 32, max_length 2048, checkpointing on
#                      (the study's), eager; building the random 506M model through convert_to_hf
#                      takes ~30 s of it; 3 warm-up + 30 timed steps per stage
#   pretrain_best      ~95 s (cap 150): compiled, micro 8, checkpointing off (likely the fastest
#                      setting that fits in 80 GB); runs on what is left of the budget
#
# A bare GPU image (the device tool's) has torch, lightning and transformers but not litgpt, trl,
# datasets or jsonschema: run `perf/gpu_figures.sh --wheels` here first (it downloads them into
# .whl/, Python 3.12 x86-64 wheels, 2.7 MB); this script installs .whl/*.whl into /tmp/site when
# those packages do not import. With the device tool (.whl/ is git-ignored, so it travels only when
# carried): run `perf/gpu_figures.sh` with carry [".whl"] and timeout_s 600 ($OUT is set there).
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-perf-out}
BUDGET_S=${BUDGET_S:-510}
MIN_PART_S=${MIN_PART_S:-45}
CONFIG=${CONFIG:-config/study.yaml}
WHEELS=(
  litgpt==0.5.13 jsonargparse==4.41.0 docstring_parser==0.18.0
  trl==1.16.0 datasets==5.0.1 dill==0.4.1 multiprocess==0.70.19
  jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1
)

if [[ ${1:-} == --wheels ]]; then
  mkdir -p .whl
  exec python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "${WHEELS[@]}"
fi
DRY=0
[[ ${1:-} == --dry-run ]] && DRY=1

mkdir -p "$OUT"
LOG="$OUT/gpu_figures.log"
: >"$LOG"
say() { echo "$@" | tee -a "$LOG"; }

if [[ -z ${PYTHON:-} ]]; then
  if [[ -x .venv/bin/python ]] && .venv/bin/python -c 'import torch' 2>/dev/null; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
# Only where the packages are missing: the wheels are built for the GPU image's Python 3.12.
if [[ $DRY == 0 ]] && compgen -G '.whl/*.whl' >/dev/null \
  && ! "$PYTHON" -c 'import litgpt, trl, datasets, jsonschema' 2>/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

# Parts: name, cap in seconds, command (the probe and its arguments).
PARTS=(
  "pretrain_eager|110|perf/probe_throughput.py --configfile $CONFIG --steps 6 --warmup 2 --micro-batch 4 8 --compile off --gradient-checkpointing on off --out $OUT/pretrain_eager.json"
  "pretrain_compiled|160|perf/probe_throughput.py --configfile $CONFIG --steps 6 --warmup 2 --micro-batch 4 --compile on --gradient-checkpointing on --out $OUT/pretrain_compiled.json"
  "classifier|120|perf/probe_classifier.py --configfile $CONFIG --windows 3 --warmup 1 --compile off on --out $OUT/classifier.json"
  "posttrain|150|perf/probe_posttrain.py --configfile $CONFIG --steps 30 --warmup 3 --out $OUT/posttrain.json"
  "pretrain_best|150|perf/probe_throughput.py --configfile $CONFIG --steps 6 --warmup 2 --micro-batch 8 --compile on --gradient-checkpointing off --out $OUT/pretrain_best.json"
)

if [[ $DRY == 1 ]]; then
  for part in "${PARTS[@]}"; do
    IFS='|' read -r name cap cmd <<<"$part"
    echo "$name (cap ${cap}s): $PYTHON $cmd"
  done
  exit 0
fi

say "== gpu_figures: $(date -u +%FT%TZ), budget ${BUDGET_S}s, config $CONFIG, python $PYTHON"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | sed 's/^/nvidia-smi: /' | tee -a "$LOG"
else
  say "nvidia-smi: not found"
fi
"$PYTHON" - <<'EOF' 2>&1 | tee -a "$LOG"
import importlib
import torch
print(f"torch {torch.__version__}; cuda {torch.cuda.is_available()}"
      + (f"; {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
needs = {
    "pretrain": ["lightning", "litgpt", "trellis.train.pretrain"],
    "classifier": ["transformers", "trellis.classifiers.model", "trellis.classifiers.score"],
    "posttrain": ["trl", "datasets", "trellis.train.posttrain", "trellis.structured.examples", "trellis.train.convert"],
}
for probe, modules in needs.items():
    missing = []
    for m in modules:
        try:
            importlib.import_module(m)
        except Exception as err:  # noqa: BLE001 - report every missing piece, run nothing here
            missing.append(f"{m} ({type(err).__name__}: {err})")
    print(f"preflight {probe}: " + ("ok" if not missing else "MISSING " + "; ".join(missing)))
EOF

START=$SECONDS
declare -A STATUS SECS
for part in "${PARTS[@]}"; do
  IFS='|' read -r name cap cmd <<<"$part"
  left=$((BUDGET_S - (SECONDS - START)))
  if ((left < MIN_PART_S)); then
    rm -f "$OUT/$name.json"
    STATUS[$name]="skipped (${left}s of the budget left)"
    say "== $name: skipped, ${left}s left"
    continue
  fi
  rm -f "$OUT/$name.json" # never a previous run's rows under this run's status
  limit=$((cap < left ? cap : left))
  say "== $name (timeout ${limit}s): $PYTHON $cmd"
  t0=$SECONDS
  # shellcheck disable=SC2086  # the command is split into its words on purpose
  timeout --kill-after=10 "$limit" "$PYTHON" $cmd 2>&1 | tee -a "$LOG"
  rc=${PIPESTATUS[0]}
  SECS[$name]=$((SECONDS - t0))
  case $rc in
    0) STATUS[$name]="ok" ;;
    124 | 137) STATUS[$name]="timed out after ${limit}s" ;;
    *) STATUS[$name]="failed (exit $rc)" ;;
  esac
  say "== $name: ${STATUS[$name]} in ${SECS[$name]}s"
done

TABLE_ARGS=()
for part in "${PARTS[@]}"; do
  IFS='|' read -r name _ _ <<<"$part"
  TABLE_ARGS+=(--part "$name" "${STATUS[$name]}" "${SECS[$name]:-0}")
done
"$PYTHON" perf/gpu_figures_table.py "$OUT" --config "$CONFIG" "${TABLE_ARGS[@]}" 2>&1 | tee -a "$LOG"
