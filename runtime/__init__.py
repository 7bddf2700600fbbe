"""The NumPy runtime: kernels, planning and execution, initialization, data, the training loop."""
