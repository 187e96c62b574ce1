"""The video SR parameters: the core registry, starting where one-step streaming SR runs."""

from engine import CORE_PARAMS

# One refiner step from a low start sigma, one slot (the stream follows steps with depth),
# no timestep shift. A model's card may name a better start sigma (checkpoint.VideoSRModels.sigma).
VIDEO_SR_PARAMS = CORE_PARAMS.with_defaults(steps=1, depth=1, strength=0.1, shift=1.0)
