"""Typed settings from the environment and the organisation YAML file."""
