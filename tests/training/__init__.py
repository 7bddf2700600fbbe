"""The training step graph."""
