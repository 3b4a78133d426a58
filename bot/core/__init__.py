"""The platform-neutral core: domain types, ports and errors. Imports no SDK."""
