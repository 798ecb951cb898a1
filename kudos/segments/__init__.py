"""Segments over stored profiles: membership, listing, explanation."""
