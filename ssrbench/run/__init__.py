"""A run: named configs, sweeps, the evaluation of one model against its attacks, the runner that turns a run
into a leaderboard, the zoo's reproduction, and the executors that spread its units (local, Ray)."""
