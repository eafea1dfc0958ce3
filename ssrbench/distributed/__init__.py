"""Executors that spread a run's units of work over other processes and machines (Ray)."""
