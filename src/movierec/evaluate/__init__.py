"""Evaluation: pure metrics over numpy arrays and a protocol over plain prediction and scoring callables."""
