"""Reports: figures and self-contained HTML pages about datasets and runs."""
