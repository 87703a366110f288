"""Slow reference implementations (oracles) that property tests compare the model against."""
