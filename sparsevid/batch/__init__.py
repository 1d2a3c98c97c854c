"""Many clips at once (``sparsevid batch``): an engine-agnostic job list and one function per clip.

* :mod:`sparsevid.batch.jobs` -- :func:`expand_inputs` (clip folders, videos, globs -> named
  :class:`ClipSpec` jobs), :func:`clip_state` and :func:`run_clip` (``spec -> row``: the same
  pipeline as ``sparsevid run`` into ``OUTROOT/<clip name>/``; skips finished clips, resumes
  half-finished ones, turns a failure into a row);
* :mod:`sparsevid.batch.engines` -- run the jobs with Ray (one task per clip) or in a local loop;
* :mod:`sparsevid.batch.summary` -- ``OUTROOT/summary.csv``, ``summary.json``, ``summary.html``.
"""
from sparsevid.batch.jobs import ClipSpec, clip_state, expand_inputs, make_specs, run_clip

__all__ = ["ClipSpec", "clip_state", "expand_inputs", "make_specs", "run_clip"]
