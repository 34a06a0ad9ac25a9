"""The write side: command models, pure decide() functions, and the command bus."""
