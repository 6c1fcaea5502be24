"""Benchmarks behind `xrd-agent bench`; results go to bench/results/."""
