#!/usr/bin/env bash
# Fill what benchmarks/gpu_check.sh carries to the GPU machine (`make gpu-wheels`):
#   build/wheels/     the wheels of benchmarks/gpu_wheels.txt for CPython 3.12 on x86-64 Linux
#   build/gpu_data/   the synthetic 1,000-frame kitchen video SYN_1K at 456x256 (its renderer
#                     needs open3d, which the GPU machine lacks), written once
# Prints the size of both: with the working tree they must stay under the 64 MiB carry limit.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
WHEELS=build/wheels
DATA=build/gpu_data
VID=SYN_1K
FRAMES=${GPU_DATA_FRAMES:-1000}

mkdir -p "$WHEELS"
# pip matches manylinux tags exactly: list the ones the pinned wheels use
OMP_NUM_THREADS=1 "$PY" -m pip download \
  -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform any -d "$WHEELS" -r benchmarks/gpu_wheels.txt 2>&1 \
  | grep -v "is ignored: it is neither a file nor a directory" || true
# one wheel per name, the pinned one: an older download left here would stop the install there
"$PY" - "$WHEELS" <<'EOF'
import re, sys
from pathlib import Path

folder = Path(sys.argv[1])
pins = {}
for line in Path("benchmarks/gpu_wheels.txt").read_text().splitlines():
    if line.strip() and not line.startswith("#"):
        name, version = line.strip().split("==")
        pins[re.sub(r"[-_.]+", "_", name.lower())] = version
seen = set()
for whl in sorted(folder.glob("*.whl")):
    name, version = whl.name.split("-")[:2]
    key = re.sub(r"[-_.]+", "_", name.lower())
    if pins.get(key) != version:
        sys.exit(f"{whl}: not pinned in benchmarks/gpu_wheels.txt; remove it")
    seen.add(key)
if missing := sorted(set(pins) - seen):
    sys.exit(f"{folder}: no wheel for {', '.join(missing)}")
print(f"{folder}: {len(seen)} wheels, one per pinned package")
EOF

if [ ! -f "$DATA/epic_fields/$VID.json" ]; then
  rm -rf "$DATA.partial"
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} .venv/bin/lmf-gs synth "$DATA.partial" --vid "$VID" \
    --frames "$FRAMES" --seed 0
  mv "$DATA.partial" "$DATA"
fi
du -sh --apparent-size "$WHEELS" "$DATA"
du -ch --apparent-size "$WHEELS" "$DATA" | tail -1
