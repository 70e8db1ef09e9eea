"""Training: the one driver and its solvers (SGD loop, ALS, distributed), checkpoints, tuning, and the protocols
that retrain."""
