"""Training of the layered Gaussian model (`lmf-gs train`)."""
