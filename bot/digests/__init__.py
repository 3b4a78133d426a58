"""Weekly participation digests for leaders: figures, privacy, chart, delivery."""
