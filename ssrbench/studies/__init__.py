"""studies: one paper's experiment set beside ssrbench's results."""
