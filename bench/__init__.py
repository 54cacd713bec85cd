"""Benchmarks and load tools that run IRMS the way production runs it (see README.md)."""
