"""Postwise: an open, self-hostable, AI-native email platform."""

__version__ = "0.1.0"
