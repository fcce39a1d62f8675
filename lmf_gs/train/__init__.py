"""The Gaussian backend's optimisation: densification, loss context, frame batches."""
