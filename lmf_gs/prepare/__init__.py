"""``lmf-gs prepare``: a video or a folder of frames -> camera poses with COLMAP (pycolmap) ->
the canonical layout (``frames/{vid}/``, ``epic_fields/{vid}.json``, ``sfm/{vid}/``).

`source` reads, samples and resizes frames; `sfm` runs pycolmap and converts its reconstruction;
`layout` writes the canonical files (staged in a temporary folder, moved in place at the end);
`pipeline` chains them; `alignment` compares a trajectory with reference poses.
"""
