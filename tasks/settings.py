"""Where agentflows keeps its local state, read from the environment at run time.

Everything agentflows keeps locally lives under one folder, `AGENTFLOWS_HOME`
(default: the per-user data directory, e.g. `~/.local/share/agentflows`):

    $AGENTFLOWS_HOME/
        agentflows.db      embedded content database (SQLite)
        outputs/           embedded object storage (stored content files)
        results/           Prefect task results: the step cache

Settings are read on every call rather than at import, so a worker, a test or a
script can point a run elsewhere by changing the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_path

from agentflows.tasks.errors import ConfigurationError

HOME_VARIABLE = "AGENTFLOWS_HOME"
RESULT_STORAGE_VARIABLE = "AGENTFLOWS_RESULT_STORAGE"


@dataclass(frozen=True)
class Settings:
    """Locations of agentflows' local state."""

    home: Path
    result_storage: Path | str
    """A local folder, or the slug of a saved Prefect filesystem block
    (e.g. `remote-file-system/agentflows-results` pointing at `s3://…`)."""

    @property
    def database_path(self) -> Path:
        return self.home / "agentflows.db"

    @property
    def outputs_dir(self) -> Path:
        return self.home / "outputs"


def current_settings() -> Settings:
    """Read the settings from the environment."""
    home = Path(os.environ.get(HOME_VARIABLE) or user_data_path("agentflows")).expanduser()
    storage = os.environ.get(RESULT_STORAGE_VARIABLE, "").strip()
    return Settings(home=home, result_storage=_result_storage(storage, home))


def _result_storage(value: str, home: Path) -> Path | str:
    if not value:
        return home / "results"
    if "://" in value:
        raise ConfigurationError(
            f"{RESULT_STORAGE_VARIABLE}={value!r} is a URL; save a Prefect "
            "RemoteFileSystem block with that basepath and give its slug "
            "(e.g. 'remote-file-system/agentflows-results') or give a local folder."
        )
    path = Path(value).expanduser()
    if path.is_absolute() or value.startswith("."):
        return path
    return value
