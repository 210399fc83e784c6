"""Experiments beside the shipped pipeline: the galamo peer and teacher, model comparison, ablations."""
