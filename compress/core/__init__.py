"""The ground floor: user errors, the one place Keras is imported, metric names, the Pareto front and
its hypervolume, files written whole by concurrent processes. Imports nothing else of the project."""
