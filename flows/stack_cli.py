"""`agentflows view`, `up`, `down`, `serve` and `blocks register`: seeing content and running agentflows from the UI.

    agentflows view [--host H] [--port P]    a web viewer of every stored content (default 127.0.0.1:4300)
    agentflows up | down                     a local Prefect server, deployments, worker and viewer, for the UI
    agentflows serve                         serve every agent and the router from this process
    agentflows blocks register               put the Block types in the Prefect UI catalogue

Each command imports what it runs (uvicorn, the Prefect server) only when it is called.
"""

from __future__ import annotations

import argparse
from typing import Any

from agentflows.catalog import load_agents
from agentflows.tasks.manifest import REWORK_NAME, ROUTER_NAME
from agentflows.tasks.settings import VIEWER_TOKEN_VARIABLE


def add_stack_commands(sub: Any) -> None:
    """`view`, `up`, `down`, `serve` and `blocks register`: seeing content and running agentflows from the UI."""
    cmd = sub.add_parser(
        "view",
        help="serve a web viewer of the stored contents",
        description="Serve a read-only web viewer of the configured content store: every content, its page, "
        f"its files and lineage, and the same as JSON under /api. Listening beyond loopback needs "
        f"{VIEWER_TOKEN_VARIABLE}; Ctrl-C stops it.",
    )
    cmd.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    cmd.add_argument("--port", type=int, default=4300, help="port to listen on (default 4300)")
    cmd.set_defaults(command=view)
    cmd = sub.add_parser("up", help="start a local Prefect server, deploy every agent, start a worker and the viewer")
    cmd.add_argument("--host", default="127.0.0.1", help="address the server listens on (default 127.0.0.1)")
    cmd.add_argument("--port", type=int, default=4200, help="port of the server and its UI (default 4200)")
    cmd.add_argument("--viewer-port", type=int, default=4300, help="port of the content viewer (default 4300)")
    cmd.add_argument("--no-worker", dest="worker", action="store_false", help="deploy, but start no worker")
    cmd.set_defaults(command=stack_up)
    cmd = sub.add_parser("down", help="stop what `agentflows up` started")
    cmd.set_defaults(command=stack_down)
    cmd = sub.add_parser(
        "serve", help="serve every agent, the router and the rework flow from this process (needs PREFECT_API_URL)"
    )
    cmd.add_argument("--limit", type=int, help="most flow runs at once")
    cmd.set_defaults(command=serve_flows)
    cmd = sub.add_parser("blocks", help="agentflows' Prefect Block types")
    blocks = cmd.add_subparsers(required=True, metavar="ACTION")
    action = blocks.add_parser("register", help="register the Block types so they appear in the UI catalogue")
    action.set_defaults(command=blocks_register)


def stack_up(args: argparse.Namespace) -> int:
    from agentflows.deployments.stack import up

    up(host=args.host, port=args.port, worker=args.worker, viewer_port=args.viewer_port)
    return 0


def view(args: argparse.Namespace) -> int:
    from agentflows.viewer.server import serve

    serve(args.host, args.port)
    return 0


def stack_down(args: argparse.Namespace) -> int:
    from agentflows.deployments.stack import down

    down()
    return 0


def serve_flows(args: argparse.Namespace) -> int:
    from agentflows.deployments.serve import serve_all

    serve_all([*load_agents(), ROUTER_NAME, REWORK_NAME], limit=args.limit)
    return 0


def blocks_register(args: argparse.Namespace) -> int:
    from agentflows.deployments.blocks import register_blocks

    for slug in register_blocks():
        print(f"registered {slug}")
    return 0
