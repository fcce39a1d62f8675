"""NeuralDiff: the published NeRF architecture, its ray sampling, rendering, losses and optimiser
(the ``nerf`` backend, `lmf_gs.backends.nerf`)."""
