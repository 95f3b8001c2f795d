"""How big each scenario is: the full run and the quick one (under three minutes in all)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FULL", "QUICK", "Plan"]


@dataclass(frozen=True)
class Plan:
    """Sizes and repetition counts of every scenario.

    ``rounds`` is how many times the targets take turns (A B C A B C ...) in each scenario;
    each turn runs a share of the scenario's iterations.
    """

    name: str
    cold_starts: int
    kernel_starts: int
    kernels_for_rss: int
    rtt_iterations: int
    rtt_rounds: int
    stream_lines: int
    stream_rounds: int
    big_output_mb: int
    fanout_clients: int
    fanout_lines: int
    listing_small: int
    listing_large: int  # 0 skips the large listing
    listing_rounds: int
    big_file_mb: int  # 0 skips the big file
    big_file_rounds: int
    load_connections: int
    load_seconds: float
    load_warmup: float
    load_rounds: int
    terminal_keystrokes: int
    terminal_output_mb: int
    terminal_rounds: int
    scenario_timeout: float


FULL = Plan(
    name="full",
    cold_starts=3,
    kernel_starts=5,
    kernels_for_rss=10,
    rtt_iterations=300,
    rtt_rounds=3,
    stream_lines=20_000,
    stream_rounds=2,
    big_output_mb=50,
    fanout_clients=20,
    fanout_lines=2_000,
    listing_small=10_000,
    listing_large=100_000,
    listing_rounds=2,
    big_file_mb=100,
    big_file_rounds=2,
    load_connections=50,
    load_seconds=3.0,
    load_warmup=0.5,
    load_rounds=2,
    terminal_keystrokes=200,
    terminal_output_mb=50,
    terminal_rounds=2,
    scenario_timeout=240.0,
)

QUICK = Plan(
    name="quick",
    cold_starts=1,
    kernel_starts=1,
    kernels_for_rss=5,  # 10 kernels cost ~20 s of kernel start-up CPU on two cores
    rtt_iterations=30,
    rtt_rounds=1,
    stream_lines=2_000,
    stream_rounds=1,
    big_output_mb=5,
    fanout_clients=10,  # jupyverse holds at most 15 kernel WebSockets; 20 stalls it for 30 s
    fanout_lines=150,
    listing_small=5_000,
    listing_large=0,
    listing_rounds=1,
    big_file_mb=10,
    big_file_rounds=1,
    load_connections=50,
    load_seconds=1.0,
    load_warmup=0.3,
    load_rounds=1,
    terminal_keystrokes=60,
    terminal_output_mb=4,
    terminal_rounds=1,
    scenario_timeout=90.0,
)
