"""Synthetic egocentric kitchen videos written in the canonical lmf-gs data layout.

:func:`generate_scene` renders a deterministic video (per seed) with its own ray caster and writes
EPIC Fields JSON, JPEG frames (folder or EPIC tar), Motion-Grouping-like soft motion masks and the
UDOS split, ground truth and 2D cache. ``SynthResult.scene`` is the
:class:`~lmf_gs.data.synth.scene.KitchenScene`; ``Renderer(scene).render(k)`` from
:mod:`lmf_gs.data.synth.render` re-renders frame ``k`` with its part-index buffer and hit points,
and :func:`lmf_gs.data.synth.masks.ground_truth` turns a part buffer into UDOS labels.
"""

from lmf_gs.data.synth.writer import SynthResult, generate_scene

__all__ = ["SynthResult", "generate_scene"]
