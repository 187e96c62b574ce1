"""`demon ...`: the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from engine import CORE_PARAMS, InputError

from .args import Parser, UsageError, add_param_flags, fail, param_values

DEMO_PARAMS = ("depth", "steps", "strength", "shift", "guidance", "seed", "solver")


def build_parser() -> Parser:
    parser = Parser(prog="demon", description="Real-time streaming media generation engine.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    demo = sub.add_parser("demo", help="run the streaming core on a tiny ACE-Step DiT")
    add_param_flags(demo, CORE_PARAMS, DEMO_PARAMS)
    demo.add_argument("--requests", type=int, default=8, help="how many requests to complete (1..1000)")
    demo.add_argument("--seconds", type=float, default=10.0, help="latent length in seconds (0 < s <= 600)")
    demo.add_argument("--out", type=Path, help="save the completed latents as safetensors")

    params = sub.add_parser("params", help="list the parameter registry")
    params.add_argument("--json", action="store_true", help="one JSON object per parameter")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "params":
            return _params(args.json)
        return _demo(args)
    except (UsageError, InputError) as err:
        return fail(str(err))
    except KeyboardInterrupt:
        return 130


def _params(as_json: bool) -> int:
    for p in CORE_PARAMS:
        if as_json:
            print(json.dumps(p.describe()))
        else:
            rng = f"{_num(p.minimum)}..{_num(p.maximum)}" if p.minimum is not None else ",".join(p.choices)
            print(f"{p.name:16} {p.type.value:6} {p.propagation.value:8} {rng:14} {p.default!s:8} {p.doc}")
    return 0


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _demo(args) -> int:
    if not 1 <= args.requests <= 1000:
        raise UsageError(f"--requests: must lie in 1..1000, got {args.requests}")
    if not 0 < args.seconds <= 600:
        raise UsageError(f"--seconds: must lie in (0, 600], got {args.seconds:g}")
    if args.out is not None and not args.out.parent.is_dir():
        raise UsageError(f"--out: folder {args.out.parent} does not exist")
    from .demo import run_demo  # torch and diffusers load only for real work

    return run_demo(param_values(args, CORE_PARAMS, DEMO_PARAMS), requests=args.requests,
                    seconds=args.seconds, out=args.out)


if __name__ == "__main__":
    sys.exit(main())
