"""Soak-length runs: kill -9 cycles under keyed writers (`crash`), a long fuzz (`fuzz_long`)."""
