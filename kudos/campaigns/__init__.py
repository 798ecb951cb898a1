"""Campaigns (campaigns.md): triggers fired by membership changes and schedules, the sender that
checks and publishes them, and the views the routes and the CLI answer with."""
