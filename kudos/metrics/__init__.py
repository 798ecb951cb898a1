"""Exact active-user figures from the activity table."""
