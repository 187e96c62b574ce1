"""demon's streaming diffusion core. Imports nothing else of the project."""

from .curves import frame_view, resample_curve
from .denoiser import Denoiser, TorchDenoiser
from .errors import InputError
from .params import CORE_PARAMS, Param, ParamType, Propagation, Registry
from .request import Request, Solver, request_from_state
from .ring import Completion, Ring, RingCounters, run_alone
from .schedule import Schedule, custom_schedule, flow_schedule, shift_sigma, unshift_sigma
from .state import StateStore, StepState
from .trace import Admission, SlotTrace, TickTrace, Trace

__all__ = [
    "Admission", "CORE_PARAMS", "Completion", "Denoiser", "InputError", "Param", "ParamType",
    "Propagation", "Registry", "Request", "Ring", "RingCounters", "Schedule", "SlotTrace",
    "Solver", "StateStore", "StepState", "TickTrace", "TorchDenoiser", "Trace", "custom_schedule",
    "flow_schedule", "frame_view", "request_from_state", "resample_curve", "run_alone",
    "shift_sigma", "unshift_sigma",
]
