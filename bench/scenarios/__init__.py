"""The scenarios, one module per group: startup, kernels, contents, throughput."""
