"""Synthetic kitchen-video generator: ray-cast scenes, poses, ground truth and motion masks."""
