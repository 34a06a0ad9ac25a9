"""Immutable, versioned facts: the only thing Glimpse ever writes.

Nothing here imports any other Glimpse package; every other layer imports this.
"""
