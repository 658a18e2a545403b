"""Experiment configs that reproduce every shipped model, and benchmark scripts."""
