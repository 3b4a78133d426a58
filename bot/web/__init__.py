"""The one aiohttp server."""
