"""Training: the loop, statistics, health checks and checkpoints."""
