"""satellites package."""
