"""Streaming voice conversion in a codec's latent space: corpus, codec, converter, stream, live."""
