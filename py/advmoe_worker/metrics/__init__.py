"""Metrics: robustness evaluation reports."""

from .evaluation import evaluate, resolve_evaluation_spec

__all__ = ["evaluate", "resolve_evaluation_spec"]
