"""Aggregated summaries for the board and the Prevent and Cohesion officer: the counts (SQL), the
statistics (pockets of concern, trends), disclosure control, and police hate-crime figures."""
