# Source from the repo root on the device machine: installs the carried wheels (the .whl*/ folders present) into
# .site/ (gitignored, kept between calls of a warm machine) -- only what is absent, as reinstalling gsplat over its
# build cache rebuilds it -- and sets the environment (PYTHONPATH, the CUDA arch, caches under .ttv_cache).
mkdir -p .site
for w in $(ls .whl/*.whl .whl2/*.whl .whl3/*.whl .whl4/*.whl 2>/dev/null); do
  pkg=$(basename "$w" | cut -d- -f1)
  ls -d .site/${pkg}* >/dev/null 2>&1 || python3 -m pip install -q --no-index --no-deps --no-compile \
      --no-cache-dir --target .site "$w"
done
export PYTHONPATH=$PWD/.site:$PWD TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=16 PYTHONUNBUFFERED=1
export TORCH_EXTENSIONS_DIR=$PWD/.ttv_cache/torch_extensions SPARSEVID_CACHE=$PWD/.ttv_cache/sparsevid
export NUMBA_CACHE_DIR=$PWD/.ttv_cache/numba
