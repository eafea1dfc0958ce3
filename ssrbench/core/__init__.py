"""The lowest floor: values every other layer uses and that import nothing else of ssrbench -- errors, option
bounds, optional extras, statistics, hashes, budgets and the L-inf PGD loop, atomic file I/O, the entry-point
registry, progress, presets and plain text."""
