"""Brand-page sources: one module per kind, each translating its payloads at the edge."""
