"""Nudge campaigns, the per-person policy and the participation ladder (arrives with its issue)."""
