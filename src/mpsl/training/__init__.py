"""Training primitives below every other layer: loss, optimizers, batch order, FedAvg, memory
counting, the allocator setting, and plain (unsplit) training. The runtime's roles, the profiler
and the estimator's calibration all use these, so that they measure and train the same way."""
