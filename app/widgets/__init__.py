"""Pieces shared by every part of the window: the category colour map and background tasks."""
