"""The console platform: the whole bot in a terminal, for trying it out and for scripted tests."""
