"""Models built from the layers of nnlab."""
