"""Running the grid: the driver (runner), the units of work (jobs), where they run (executors), the one
embedding path and the embedding cache.
"""
