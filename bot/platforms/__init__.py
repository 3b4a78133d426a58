"""Chat platforms behind the ChatPlatform port: Slack, Teams and the local console."""
