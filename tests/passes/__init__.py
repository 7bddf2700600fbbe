"""The graph passes."""
