"""Helpers shared by Lamina's test suites (not part of the lamina package)."""
