"""The shared kernel: identity, profile, records, clock, settings, errors, time."""
