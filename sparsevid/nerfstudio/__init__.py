"""sparsevid as a nerfstudio method: ``ns-train sparsevid-nerfacto`` / ``ns-train sparsevid-splatfacto``.

The methods are nerfstudio's nerfacto and splatfacto (same models, same settings, so their checkpoints load
both ways: ``ns-train sparsevid-nerfacto --load-checkpoint`` of a nerfacto run, ``ns-render``, ``ns-export
gaussian-splat``), trained by a pipeline that runs sparsevid's Difix3D progressive updates
(:mod:`sparsevid.fixer.progressive`) with sparsevid's fixers and trains on the pseudo views with their confidence
weights, as sparsevid's own trainer does. ``sparsevid run --from-nerfstudio CONFIG.yml`` turns the trained model
into sparsevid's time-exact video (:mod:`sparsevid.nerfstudio.video`).

Modules (each imports nerfstudio; this package itself does not, so ``import sparsevid`` never needs it):

- :mod:`.methods`: the two ``MethodSpecification`` objects, registered through the ``nerfstudio.method_configs``
  entry point in ``pyproject.toml``;
- :mod:`.pipeline`: ``SparsevidPipeline`` (progressive rounds as training callbacks, pseudo-view steps);
- :mod:`.convert`: nerfstudio cameras and datasets <-> sparsevid ``Camera`` / ``Scene``;
- :mod:`.render`: a nerfstudio model as sparsevid's render function (RGB + z-depth + alpha at any camera);
- :mod:`.video`: ``sparsevid run --from-nerfstudio``.

Install in an environment of its own: ``pip install torch==2.13.0 -e '.[nerfstudio]'`` (nerfstudio 1.1.5 pins
gsplat 1.4.0 and OpenCV 4.10); see README "nerfstudio". None of these modules uses gsplat itself: the nerfacto
variant runs on the CPU in plain PyTorch, the splatfacto variant needs CUDA (nerfstudio's gsplat rasterizer).
"""
