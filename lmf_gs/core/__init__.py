"""What every layered backend shares: layer names, batches, the mask-rendering context, loss
terms, the fusion losses, the iteration loop, frame selection and run folders."""
