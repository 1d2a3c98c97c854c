# Source on the device machine, from the repo root: installs the carried wheels and restores the
# carried gsplat CUDA build so it is not recompiled (ninja sees fresh outputs).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD:${PYTHONPATH:-}
export TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=16 TORCH_EXTENSIONS_DIR=/tmp/gsext PYTHONUNBUFFERED=1
if [ -f .gsplat_ext/gsplat_ext.tgz ]; then  # tar of TORCH_EXTENSIONS_DIR from an earlier device run
  # gsplat imports a prebuilt `gsplat.csrc` before trying its JIT build: point that at the carried .so
  tar xzf .gsplat_ext/gsplat_ext.tgz -C /tmp
  cat > /tmp/site/gsplat/csrc.py <<'PY'
import importlib.util as _u
_spec = _u.spec_from_file_location("gsplat_cuda", "/tmp/gsext/gsplat_cuda/gsplat_cuda.so")
_mod = _u.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
globals().update({k: v for k, v in vars(_mod).items() if not k.startswith("__")})
PY
fi
python3 -c "import gsplat, time; t=time.time(); from gsplat.cuda._backend import _C; print('gsplat ready in', round(time.time()-t,1), 's')"
