"""The learning library: curated links, checks, picks and sharing (arrives with its issue)."""
