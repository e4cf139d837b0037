"""Sputnik: a mock instrument for examples and tests (`satellite-run Sputnik -n One -g edda`)."""

from .sputnik import Sputnik

__all__ = ["Sputnik"]
