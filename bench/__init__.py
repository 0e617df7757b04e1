"""Load scenarios against real frsync processes, and the script that writes BENCHMARKS.md."""
