"""The voice conversion parameters: the core registry plus what a stream of chunks has."""

from engine import CORE_PARAMS, Group as G, Param, ParamType as T, Propagation as P

# One step per chunk, one slot (the stream's depth follows the steps), no timestep shift:
# the real-time setting. The converter trained on parallel sentences lands on the target
# in that one step without guidance: on bench/voice.py's 32 pairs, strength 0.5 at
# guidance 1 gives MCD 7.5 dB and accuracy 0.19, against 8.1 / 0.09 at 1.5 and 9.3 / 0.16
# at strength 0.7 and guidance 2 (strengths of 0.9 and 1 score worse on both).
# Chunk, context and overlap sizes reach the next chunk cut.
VOICE_PARAMS = CORE_PARAMS.with_defaults(steps=1, depth=1, strength=0.5, shift=1.0, guidance=1.0).extend(
    Param("chunk_ms", T.INT, 40, P.REQUEST, 10, 500, "ms",
          doc="audio per conversion chunk, in whole 10 ms frames; the watchdog grows it when compute falls behind",
          group=G.STREAM),
    Param("context_ms", T.INT, 80, P.REQUEST, 10, 500, "ms",
          doc="source audio before each chunk that the converter sees (never after it)", group=G.STREAM),
    Param("overlap_ms", T.INT, 10, P.REQUEST, 0, 100, "ms",
          doc="overlap of consecutive chunks, crossfaded (adds to the latency; at most context_ms)", group=G.STREAM),
    Param("vad_db", T.FLOAT, -50.0, P.OUTPUT, -100.0, 0.0, "dBFS",
          doc="chunks quieter than this are gated to silence without conversion", group=G.OUTPUT),
    Param("speech_threshold", T.FLOAT, 0.5, P.OUTPUT, 0.0, 1.0, "",
          doc="chunks with no 32 ms window at or above this speech probability (Silero VAD) in the last "
              "200 ms are gated to silence; 0 turns the detector off (the level gate alone, e.g. for singing)",
          group=G.OUTPUT),
    Param("gain", T.FLOAT, 1.0, P.OUTPUT, 0.0, 2.0, "x", doc="output gain", group=G.OUTPUT),
)
