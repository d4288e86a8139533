"""The standard benchmarks of ``moovolt bench``, each beside its baseline."""
