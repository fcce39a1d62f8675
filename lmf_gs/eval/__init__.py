"""UDOS evaluation (official protocol) of soft segmentation maps."""
