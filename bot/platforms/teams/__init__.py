"""Microsoft Teams through botbuilder's CloudAdapter at /api/messages."""
