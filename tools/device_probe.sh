#!/usr/bin/env bash
# Device probe: which packages exist, and build gsplat's CUDA extension once so it can be carried back.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 - <<'PY'
import importlib, sys
print(sys.version)
for m in ["torch","cv2","av","imageio","imageio_ffmpeg","pycolmap","skimage","scipy","diffusers","safetensors","peft","transformers","rich","numba","jaxtyping","ninja","PIL","lpips","huggingface_hub"]:
    try:
        mod = importlib.import_module(m); print(f"{m:16s} OK {getattr(mod,'__version__','?')}")
    except Exception as e:
        print(f"{m:16s} MISSING ({type(e).__name__})")
PY
which ninja ffmpeg
export TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=16 TORCH_EXTENSIONS_DIR=/tmp/gsext
t0=$(date +%s)
python3 -c "
import torch, gsplat
from gsplat.cuda._backend import _C
print('gsplat', gsplat.__version__, 'C ok', _C is not None)
means=torch.randn(100,3,device='cuda')+torch.tensor([0,0,5.],device='cuda')
q=torch.randn(100,4,device='cuda'); s=torch.rand(100,3,device='cuda')*0.1; o=torch.rand(100,device='cuda'); c=torch.rand(100,3,device='cuda')
K=torch.tensor([[100.,0,64],[0,100.,48],[0,0,1]],device='cuda')[None]; V=torch.eye(4,device='cuda')[None]
img,a,meta=gsplat.rasterization(means,q,s,o,c,V,K,128,96)
print('render ok', img.shape, float(img.mean()))
"
echo "compile+test seconds: $(( $(date +%s) - t0 ))"
ls -la /tmp/gsext/*
tar czf $OUT/gsplat_ext.tgz -C /tmp gsext
ls -la $OUT
