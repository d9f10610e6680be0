"""``python -m local <command>``: serve, token, invoke, warmup, kv, openapi (``--help`` on each)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from local import ROOT, LocalError, commands, kvcli
from local.datadir import DataDir
from local.template import Template


def _overrides(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator:
            raise SystemExit(f"--parameter-overrides takes Name=Value, not {pair!r}")
        overrides[name] = value
    return overrides


def _parser() -> argparse.ArgumentParser:
    # SUPPRESS: the kv actions repeat these options, and a repeated default would clobber a given value.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--template", type=Path, help="default: template.yaml")
    common.add_argument("--data-dir", help="default: $ARCTURUS_LOCAL_DIR or .local/")
    common.add_argument(
        "--env-vars", type=Path, help="sam local's --env-vars format; default: local/env.json"
    )
    common.add_argument("--parameter-overrides", nargs="+", metavar="NAME=VALUE", help="template parameters")
    common.add_argument(
        "--python",
        help="the functions' interpreter (default: this one); .venv-lambda/bin/python has only the runtime's",
    )
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    commands_ = parser.add_subparsers(dest="command", required=True)

    serve_ = commands_.add_parser("serve", parents=[common], help="serve the API and the embedded AWS")
    serve_.add_argument("--host", default="127.0.0.1", help="listen address (0.0.0.0 only if you mean it)")
    serve_.add_argument(
        "--port", type=int, default=int(os.environ.get("PORT", "3000")), help="default: $PORT or 3000"
    )
    serve_.add_argument("--aws-only", action="store_true", help="only the embedded AWS, for sam local")
    serve_.add_argument(
        "--aws-port", type=int, help="embedded AWS port (default: free; 4566 with --aws-only)"
    )
    serve_.add_argument("--max-workers", type=int, default=4, help="workers per function (default 4)")
    serve_.add_argument(
        "--schedule-scale", type=float, default=1.0, help="multiply schedule intervals (tests)"
    )

    token = commands_.add_parser("token", parents=[common], help="print a JWT the API accepts (last line)")
    token.add_argument("--email", required=True)
    token.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600)")
    token.add_argument(
        "--port", type=int, default=int(os.environ.get("PORT", "3000")), help="API port, no serve"
    )

    invoke = commands_.add_parser("invoke", parents=[common], help="run one function once on an event")
    invoke.add_argument("function", help="the function's logical id, e.g. AuthMeFunction")
    invoke.add_argument("-e", "--event", type=Path, help="event JSON file ('-' for stdin; default {})")

    commands_.add_parser("warmup", parents=[common], help="fire every schedule once, now")
    kv = commands_.add_parser("kv", parents=[common], help="the KV namespace (get|put|list|delete)")
    kvcli.add_arguments(kv, common)
    openapi = commands_.add_parser("openapi", parents=[common], help="print the API's OpenAPI document")
    openapi.add_argument("-o", "--output", type=Path, help="write it to this file instead")
    return parser


def _event(path: Path | None) -> bytes:
    if path is None:
        return b"{}"
    return sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (LocalError, FileNotFoundError) as error:
        print(f"local: {error}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    overrides = _overrides(getattr(args, "parameter_overrides", []))
    template = Template(getattr(args, "template", ROOT / "template.yaml"), overrides)
    # This process uses the functions' layers (the KV code for seeding and ``kv``) as they do.
    for layer in dict.fromkeys(d for spec in template.functions().values() for d in spec.layer_dirs):
        sys.path.insert(0, str(layer))
    if args.command == "openapi":
        from local import openapi  # noqa: PLC0415 - imports every function: only for this command

        return openapi.write(template, args.output)
    data = DataDir(getattr(args, "data_dir", None))
    env_vars = json.loads(getattr(args, "env_vars", ROOT / "local" / "env.json").read_text())
    python = getattr(args, "python", sys.executable)
    # Workers start in their function's directory: a relative path must not depend on it.
    python = os.path.abspath(python) if os.sep in python else python
    if args.command == "serve":
        from local.serve import ServeOptions, serve  # noqa: PLC0415 - the other commands skip moto

        options = ServeOptions(
            host=args.host,
            port=args.port,
            aws_port=args.aws_port if args.aws_port is not None else (4566 if args.aws_only else 0),
            aws_only=args.aws_only,
            max_workers=max(1, args.max_workers),
            schedule_scale=args.schedule_scale,
            env_vars=env_vars,
            python=python,
        )
        serve(template, data, options)
        return 0
    if args.command == "token":
        return commands.token(template, data, args.email, args.ttl, args.port)
    if args.command == "invoke":
        return commands.invoke(template, data, args.function, _event(args.event), env_vars, python=python)
    if args.command == "warmup":
        return commands.warmup(template, data, env_vars, python)
    return commands.kv(template, data, args)


if __name__ == "__main__":
    sys.exit(main())
