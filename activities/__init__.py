"""Activity functions: the only code that touches storage while an export runs."""
