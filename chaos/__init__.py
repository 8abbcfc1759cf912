"""`make chaos`: a bounded run of the whole panel under a mixed workload while faults are injected."""
