"""Pure computation on integers and indices: shortest paths, matrices, solvers."""
