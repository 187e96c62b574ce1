"""demon's streaming diffusion core. Imports nothing else of the project."""

from .curves import frame_view, resample_curve
from .denoiser import Denoiser, TorchDenoiser
from .errors import InputError
from .guidance import APG, CFG, Guidance, LiveGuidance
from .params import CORE_PARAMS, Group, Param, ParamType, Propagation, Registry
from .request import Request, Solver, request_from_state
from .ring import Ring, run_alone
from .ring_outputs import Completion, RingCounters
from .schedule import Schedule, custom_schedule, flow_schedule, shift_sigma, unshift_sigma
from .state import StateStore, StepState
from .tick_params import GuidanceRule, TickParams
from .trace import Admission, SlotTrace, TickTrace, Trace
from .tuning import tune_max_batch

__all__ = [
    "APG", "Admission", "CFG", "CORE_PARAMS", "Completion", "Denoiser", "Guidance", "GuidanceRule", "InputError", "LiveGuidance",
    "Group", "Param", "ParamType", "Propagation", "Registry", "Request", "Ring", "RingCounters", "Schedule", "SlotTrace",
    "Solver", "StateStore", "StepState", "TickParams", "TickTrace", "TorchDenoiser", "Trace",
    "custom_schedule", "flow_schedule", "frame_view", "request_from_state", "resample_curve", "run_alone",
    "shift_sigma", "tune_max_batch", "unshift_sigma",
]
