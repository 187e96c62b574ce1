"""The parameter registry: one list of every control, read by every front-end.

Each parameter declares its type, range, default, unit and propagation class. MIDI,
OSC, the web page and the CLI only ever look parameters up here.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator, Mapping

from .errors import InputError

MAX_CURVE_POINTS = 4096


class Propagation(enum.Enum):
    """When a change to a parameter is heard (../shared/DESIGN.md, "Propagation classes")."""

    STEP = "step"  # read from StepState every solver step; onset next tick
    FRAME = "frame"  # per-frame curve read at the re-noise step; onset next tick
    REQUEST = "request"  # fixed when a slot is born; onset next admission
    OUTPUT = "output"  # applied after generation; onset next output block


class Group(enum.Enum):
    """Where a control sits on a performer's surface: the page shows the groups in this order."""

    PLAY = "what to play"  # prompts, lyrics, blend, task
    MOTION = "how it moves"  # guidance, strength, steps, curves
    LOOP = "the loop"  # length, bars, bpm
    STREAM = "the stream"  # chunk and context sizes (voice)
    OUTPUT = "output"  # gain, crossfade, gates
    ENGINE = "the engine"  # solver, schedule shift, depth, seed

    @property
    def key(self) -> str:
        return self.name.lower()


class ParamType(enum.Enum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    CHOICE = "choice"
    TEXT = "text"
    CURVE = "curve"  # a per-frame curve: a sequence of floats within the range


@dataclass(frozen=True)
class Param:
    name: str
    type: ParamType
    default: Any
    propagation: Propagation
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    choices: tuple[str, ...] = ()
    doc: str = ""
    group: Group | None = None  # required: every control has its place on the page

    def __post_init__(self) -> None:
        # A registry entry whose own default is invalid, or that has no group, is a programming error.
        if not isinstance(self.group, Group):
            raise TypeError(f"parameter {self.name!r} needs a group (engine.Group)")
        self.coerce(self.default)

    def coerce(self, value: Any, *, clamp: bool = False) -> Any:
        """Return `value` converted to this parameter's type, or raise InputError.

        With clamp=True, a finite number outside the range is pulled inside it
        (what a MIDI fader or an OSC sender expects); NaN and wrong types still raise.
        """
        kind = self.type
        if kind is ParamType.CURVE:
            return self._coerce_curve(value, clamp)
        if kind is ParamType.BOOL:
            if isinstance(value, bool):
                return value
            if isinstance(value, (int, float)) and value in (0, 1):
                return bool(value)
            raise InputError(self.name, f"expected a boolean, got {value!r}")
        if kind is ParamType.CHOICE:
            if isinstance(value, str) and value in self.choices:
                return value
            raise InputError(self.name, f"expected one of {', '.join(self.choices)}, got {value!r}")
        if kind is ParamType.TEXT:
            if isinstance(value, str) and len(value) <= 2000:
                return value
            raise InputError(self.name, f"expected text of at most 2000 characters, got {value!r:.60}")
        number = self._number(value)
        if kind is ParamType.INT:
            if number != int(number):
                raise InputError(self.name, f"expected an integer, got {value!r}")
            return int(self._in_range(int(number), clamp))
        return float(self._in_range(number, clamp))

    def _number(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(self.name, f"expected a number, got {type(value).__name__} {value!r:.60}")
        number = float(value)
        if not math.isfinite(number):
            raise InputError(self.name, f"expected a finite number, got {value!r}")
        return number

    def _in_range(self, number: float, clamp: bool) -> float:
        lo, hi = self.minimum, self.maximum
        if (lo is not None and number < lo) or (hi is not None and number > hi):
            if not clamp:
                raise InputError(self.name, f"{number:g} is outside {lo:g}..{hi:g} {self.unit}".rstrip())
            number = min(max(number, lo if lo is not None else number), hi if hi is not None else number)
        return number

    def _coerce_curve(self, value: Any, clamp: bool) -> tuple[float, ...]:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            points: Iterable[Any] = (value,)
        elif isinstance(value, (list, tuple)):
            points = value
        elif hasattr(value, "tolist"):  # numpy arrays and torch tensors
            points = value.tolist()
        else:
            raise InputError(self.name, f"expected a number or a list of numbers, got {type(value).__name__}")
        points = tuple(points)
        if not 1 <= len(points) <= MAX_CURVE_POINTS:
            raise InputError(self.name, f"a curve needs 1..{MAX_CURVE_POINTS} points, got {len(points)}")
        return tuple(float(self._in_range(self._number(p), clamp)) for p in points)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description, for front-ends that build their controls from it."""
        return {
            "name": self.name,
            "type": self.type.value,
            "default": list(self.default) if isinstance(self.default, tuple) else self.default,
            "propagation": self.propagation.value,
            "min": self.minimum,
            "max": self.maximum,
            "unit": self.unit,
            "choices": list(self.choices),
            "doc": self.doc,
            "group": self.group.key,
        }


@dataclass(frozen=True)
class Registry:
    """An ordered, immutable set of parameters. Pipelines extend the core one."""

    params: tuple[Param, ...]
    _by_name: Mapping[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, Param] = {}
        for p in self.params:
            if p.name in by_name:
                raise ValueError(f"parameter {p.name!r} is declared twice")
            by_name[p.name] = p
        object.__setattr__(self, "_by_name", by_name)

    def __getitem__(self, name: str) -> Param:
        try:
            return self._by_name[name]
        except KeyError:
            raise InputError(name, "unknown parameter") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params)

    def names(self, propagation: Propagation | None = None) -> tuple[str, ...]:
        return tuple(p.name for p in self.params if propagation is None or p.propagation is propagation)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def coerce(self, name: str, value: Any, *, clamp: bool = False) -> Any:
        return self[name].coerce(value, clamp=clamp)

    def extend(self, *params: Param) -> "Registry":
        return Registry(self.params + tuple(params))

    def with_defaults(self, **defaults: Any) -> "Registry":
        """The same parameters starting elsewhere (a pipeline's own defaults), each validated."""
        for name in defaults:
            self[name]  # an unknown name is an InputError
        return Registry(tuple(replace(p, default=defaults[p.name]) if p.name in defaults else p for p in self.params))


G, P, T = Group, Propagation, ParamType

CORE_PARAMS = Registry(
    (
        Param("guidance", T.FLOAT, 1.0, P.STEP, 0.0, 20.0, "x",
              doc="guidance scale (of the rule guidance_rule names); 1 runs the conditional branch alone",
              group=G.MOTION),
        Param("guidance_rule", T.CHOICE, "cfg", P.STEP, choices=("cfg", "apg"),
              doc="how guidance combines the two halves: cfg (classifier-free) or apg (adaptive projected, "
                  "ACE-Step's base models; momentum per slot)", group=G.ENGINE),
        Param("velocity_scale", T.FLOAT, 1.0, P.STEP, 0.0, 2.0, "x",
              doc="scales the predicted velocity before each solver step", group=G.MOTION),
        Param("prompt_blend", T.FLOAT, 0.0, P.STEP, 0.0, 1.0,
              doc="interpolates the conditioning from prompt A (0) to prompt B (1)", group=G.PLAY),
        Param("source_blend", T.CURVE, (0.0,), P.FRAME, 0.0, 1.0,
              doc="per-frame source preservation at each re-noise step (1 keeps the source)", group=G.MOTION),
        Param("noise_injection", T.CURVE, (1.0,), P.FRAME, 0.0, 1.0,
              doc="per-frame share of fresh noise at each re-noise step (0 follows the ODE)", group=G.MOTION),
        Param("strength", T.FLOAT, 1.0, P.REQUEST, 0.01, 1.0,
              doc="start sigma of new requests; 1 starts from pure noise", group=G.MOTION),
        Param("steps", T.INT, 8, P.REQUEST, 1, 200, "steps", doc="solver steps of new requests", group=G.MOTION),
        Param("shift", T.FLOAT, 3.0, P.REQUEST, 0.1, 10.0, doc="ACE-Step timestep shift of new requests",
              group=G.ENGINE),
        Param("seed", T.INT, 0, P.REQUEST, 0, 2**31 - 1, doc="seed of the next request", group=G.ENGINE),
        Param("solver", T.CHOICE, "euler", P.REQUEST, choices=("euler", "sde"),
              doc="euler: deterministic ODE; sde: re-noise with source blend and noise injection", group=G.ENGINE),
        Param("depth", T.INT, 4, P.REQUEST, 1, 16, "slots",
              doc="ring slots run per tick; changing it keeps in-flight work", group=G.ENGINE),
    )
)
