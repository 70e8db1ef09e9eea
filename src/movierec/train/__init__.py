"""Training: typed configs, the one training loop, checkpoints and run folders."""
