"""Benchmarks behind ``attnkit bench``."""
