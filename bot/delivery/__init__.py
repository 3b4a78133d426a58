"""The outbox: durable, rate-limited, retried sending for every platform."""
