"""Pipelines: engine + models + I/O for music, video super-resolution and voice."""
