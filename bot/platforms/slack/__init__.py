"""Slack through Bolt's AsyncApp: HTTP at /slack/events, or Socket Mode."""
