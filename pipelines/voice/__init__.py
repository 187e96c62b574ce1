"""Streaming voice conversion in a codec's latent space (in progress: the parallel speech corpus)."""
