"""The video SR parameters: the core registry, starting where one-step streaming SR runs, plus detail and steady."""

from engine import CORE_PARAMS, Group as G, Param, ParamType as T, Propagation as P

# One refiner step from a low start sigma, one slot (the stream follows steps with depth),
# no timestep shift. A model's card may name a better start sigma, detail and steady
# (checkpoint.VideoSRModels.sigma, .detail, .steady).
VIDEO_SR_PARAMS = CORE_PARAMS.with_defaults(steps=1, depth=1, strength=0.1, shift=1.0).extend(
    Param("detail", T.FLOAT, 1.0, P.OUTPUT, 0.0, 2.0, "x",
          doc="scales the detail the decoder adds onto bicubic (0 is bicubic; a model card may start it elsewhere)",
          group=G.OUTPUT),
    Param("steady", T.FLOAT, 0.0, P.REQUEST, 0.0, 1.0, "",
          doc="blends up to this much of the previous input frame, carried along the motion, into each new "
              "one where the motion explains it: a steadier picture with less compression noise (0 is off; "
              "a model card may start it elsewhere)", group=G.MOTION),
)
