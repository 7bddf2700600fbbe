"""Training: the train block's settings (config.py), optimizers as IR (optimizers.py), the
train-step graph (step.py), data loading (data.py), parameter initialization (params.py) and the
epoch loop over any backend (loop.py)."""
