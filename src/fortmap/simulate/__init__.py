"""A deterministic simulated city imaged on two dates, with exact truth of what changed."""

from fortmap.simulate.difficulty import PRESETS, Difficulty, resolve_difficulty
from fortmap.simulate.scene import SimulatedScene, simulate_city

__all__ = ["PRESETS", "Difficulty", "SimulatedScene", "resolve_difficulty", "simulate_city"]
