#!/usr/bin/env bash
# One command for the GPU machine (docs/gpu.md), under 9 minutes there:
#   1. installs the carried wheels (build/wheels, `make gpu-wheels`) into a temporary site,
#   2. builds gsplat's CUDA kernels once, for this GPU's architecture only, MAX_JOBS = cores,
#   3. runs the device tests, then the benchmarks on the carried SYN_1K video (build/gpu_data),
#   4. writes gpu_check.log, gpu_check.md (the table) and gpu_check.json into $OUT
#      (default: build/gpu_check/<date-time>).
# Stages and sizes: benchmarks/gpu_check.py; extra arguments go to it (e.g. --only tests raster).
#
# GPU_CHECK_DRY_RUN=1: the same stages on the CPU with the torch rasteriser at tiny sizes, with
# open3d, pycolmap and viser made unimportable as they are there (rehearsal, not GPU figures).
# Other settings: PYTHON (python3 there; .venv/bin/python for a dry run), GPU_CHECK_BUDGET_S
# (525), GPU_CHECK_SITE (/tmp/lmf_gs_site), TORCH_CUDA_ARCH_LIST and MAX_JOBS (detected).
set -uo pipefail
START=$(date +%s)
cd "$(dirname "$0")/.."
DRY=${GPU_CHECK_DRY_RUN:-0}
OUT=${OUT:-build/gpu_check/$(date +%Y%m%d-%H%M%S)}
if [ -e "$OUT/gpu_check.md" ]; then
  echo "gpu_check: $OUT already holds results (gpu_check.md): set OUT to another folder" >&2
  exit 2
fi
mkdir -p "$OUT"

main() {
  local args=(--out "$OUT" --started-at "$START" --data-root build/gpu_data)
  if [ "$DRY" = 1 ]; then
    PYTHON=${PYTHON:-.venv/bin/python}
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # the shared 2-core machine
    args+=(--dry-run)
  else
    PYTHON=${PYTHON:-python3}
  fi
  [ -n "${GPU_CHECK_BUDGET_S:-}" ] && args+=(--budget-s "$GPU_CHECK_BUDGET_S")
  export PYTHONUNBUFFERED=1
  echo "gpu_check: $(date -u '+%F %T') UTC, $(uname -m), $(getconf _NPROCESSORS_ONLN) cores, python: $PYTHON"

  # -- the carried wheels, into a site of their own (nothing installed system-wide) ----------
  local site=${GPU_CHECK_SITE:-/tmp/lmf_gs_site} pyver
  pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') || return 1
  if [ "$pyver" = 3.12 ]; then
    if ! ls build/wheels/*.whl >/dev/null 2>&1; then
      echo "gpu_check: build/wheels holds no wheels: run 'make gpu-wheels' and carry build/wheels"
      return 2
    fi
    local want
    want=$(cd build/wheels && ls -- *.whl | sort | tr '\n' ' ')
    # the same wheels already there (a rerun on a warm machine): keep them, so that gsplat's
    # sources keep their times and the kernels built from them are reused
    if [ "$(cat "$site/.wheels" 2>/dev/null)" != "$want" ]; then
      rm -rf "$site"
      "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --disable-pip-version-check --target "$site" build/wheels/*.whl || return 1
      echo "$want" >"$site/.wheels"
      echo "gpu_check: installed into $site: $want"
    else
      echo "gpu_check: $site already holds the carried wheels"
    fi
    export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  else
    echo "gpu_check: Python $pyver: the carried wheels are for 3.12; using $PYTHON's packages"
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  fi

  if [ "$DRY" = 1 ]; then
    # the GPU machine has no open3d (too large to carry), pycolmap or viser: neither may we
    local block
    block=$(mktemp -d)
    cat >"$block/sitecustomize.py" <<'EOF'
import sys


class _Absent:
    """Imports of packages the GPU machine lacks fail, as they would there."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("open3d", "pycolmap", "viser"):
            raise ImportError(f"{name}: not on the GPU machine (gpu_check dry run)")
        return None


sys.meta_path.insert(0, _Absent())
EOF
    export PYTHONPATH="$block:$PYTHONPATH"
  else
    # -- gsplat's kernels: this GPU's architecture only, every core, a folder kept for reruns
    if ! command -v nvidia-smi >/dev/null; then
      echo "gpu_check: no nvidia-smi: not a GPU machine (GPU_CHECK_DRY_RUN=1 for a CPU rehearsal)"
      return 2
    fi
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv
    export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$(nvidia-smi \
      --query-gpu=compute_cap --format=csv,noheader | head -1)}
    export MAX_JOBS=${MAX_JOBS:-$(getconf _NPROCESSORS_ONLN)}
    export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-/tmp/lmf_gs_torch_extensions}
    echo "gpu_check: TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST MAX_JOBS=$MAX_JOBS"
  fi
  "$PYTHON" benchmarks/gpu_check.py "${args[@]}" "$@"
}

main "$@" 2>&1 | tee -a "$OUT/gpu_check.log"
status=${PIPESTATUS[0]}
echo "gpu_check: exit $status after $(($(date +%s) - START)) s; results in $OUT" \
  | tee -a "$OUT/gpu_check.log"
exit "$status"
