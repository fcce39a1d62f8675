"""Test-time refinement (TR) of the non-static sets on the frames to analyse."""
