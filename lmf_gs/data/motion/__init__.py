"""Soft 2D motion masks without learned weights: dense optical flow minus the flow that the known
camera motion explains, scored per frame (`flow`, `rigid`, `score`, `estimate`, `writer`)."""
