"""fortmap: map what was done to the ground of a city between two image dates."""

__version__ = "0.1.0"
