"""The video SR parameters: the core registry, starting where one-step streaming SR runs, plus detail."""

from engine import CORE_PARAMS, Param, ParamType as T, Propagation as P

# One refiner step from a low start sigma, one slot (the stream follows steps with depth),
# no timestep shift. A model's card may name a better start sigma and detail
# (checkpoint.VideoSRModels.sigma, .detail).
VIDEO_SR_PARAMS = CORE_PARAMS.with_defaults(steps=1, depth=1, strength=0.1, shift=1.0).extend(
    Param("detail", T.FLOAT, 1.0, P.OUTPUT, 0.0, 2.0, "x",
          doc="scales the detail the decoder adds onto bicubic (0 is bicubic; a model card may start it elsewhere)"),
)
