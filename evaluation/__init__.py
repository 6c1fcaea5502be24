"""Evaluation: protocols, folds, metrics and baselines that measure the classifier."""
