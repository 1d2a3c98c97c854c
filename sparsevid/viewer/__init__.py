"""``sparsevid view OUT``: a viser web viewer of an output folder (see :mod:`sparsevid.viewer.server`);
:mod:`sparsevid.viewer.scene` holds the pure parts (loading, splat arrays, frustums, live render)."""
