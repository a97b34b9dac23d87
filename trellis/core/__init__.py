"""What every stage shares: atomic file I/O, logging, the task definitions, step statistics, bootstrap intervals."""
