"""The write paths of the HTTP API (sessions, push, /v1/users/*) and their validation."""
