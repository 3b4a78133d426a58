"""Evangelist: an in-house social media evangelist for Slack, Teams and a local console."""

__version__ = "0.1.0"
