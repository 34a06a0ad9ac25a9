"""The read side: read-only HTTP routes over the read models, and their response schemas."""
