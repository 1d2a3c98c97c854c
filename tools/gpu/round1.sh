#!/usr/bin/env bash
# GPU round 1: gaussians parity + training benchmark, Difix speed.
set -u
source tools/gpu/env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
timeout 240 python3 tools/gpu/gaussians_check.py --scene .device_data/cases/gopro_sidewalk/reference_transforms.json --skip-cpu 2>&1 | tail -40
timeout 330 python3 tools/gpu/difix_bench.py --no-cudagraphs 2>&1 | tail -30
ls -la $OUT
