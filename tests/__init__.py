"""Baby Monitor test suite."""
