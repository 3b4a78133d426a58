"""The question desk: intake, detection, routing, escalation, answer tracking, knowledge."""
