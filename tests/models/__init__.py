"""The shipped models and the layer libraries they use."""
