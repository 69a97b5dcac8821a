"""Evaluation: the paper's metrics, score fusion and reports."""
