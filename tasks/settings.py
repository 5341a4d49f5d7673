"""agentflows' settings, read from the environment in one place.

    AGENTFLOWS_HOME             folder of the local state (default: the per-user data folder)
    AGENTFLOWS_RESULT_STORAGE   step results: a local folder, or the slug of a saved Prefect filesystem block
    AGENTFLOWS_DEFINITIONS      the definitions folder (default: the one shipped with the package)
    AGENTFLOWS_KNOWLEDGE_ROOTS  folders a run's knowledge input may name (os.pathsep-separated;
                                default: $AGENTFLOWS_HOME/knowledge); s3:// prefixes need none
    AGENTFLOWS_LLM_*            a real model endpoint (`agentflows.tasks.llm.settings`); unset: offline
    AGENTFLOWS_CONTENT_STORE    a saved content store Block, which wins over the next three
    AGENTFLOWS_DATABASE_URL, AGENTFLOWS_STORAGE_URL, AGENTFLOWS_S3_ENDPOINT_URL, AWS_*   where content is stored
    AGENTFLOWS_VIEWER_URL       where `agentflows view` is reached; Prefect artifacts link to its content pages
    AGENTFLOWS_VIEWER_TOKEN     the token the viewer asks for (required when it listens beyond loopback)

Everything agentflows keeps locally lives under `AGENTFLOWS_HOME`:

    $AGENTFLOWS_HOME/
        agentflows.db      embedded content database (SQLite)
        outputs/           embedded object storage (stored content files)
        results/           Prefect task results: the step cache

`Settings.from_env()` validates every value at once, so a bad one is one
`ConfigurationError` naming the variable before anything runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from platformdirs import user_data_path
from pydantic import BaseModel, ConfigDict, SecretStr

from agentflows.tasks.errors import ConfigurationError
from agentflows.tasks.llm.settings import ProviderSettings
from agentflows.tasks.storage.config import StoreSettings

HOME_VARIABLE = "AGENTFLOWS_HOME"
RESULT_STORAGE_VARIABLE = "AGENTFLOWS_RESULT_STORAGE"
DEFINITIONS_VARIABLE = "AGENTFLOWS_DEFINITIONS"
KNOWLEDGE_ROOTS_VARIABLE = "AGENTFLOWS_KNOWLEDGE_ROOTS"
STORE_BLOCK_VARIABLE = "AGENTFLOWS_CONTENT_STORE"
VIEWER_URL_VARIABLE = "AGENTFLOWS_VIEWER_URL"
VIEWER_TOKEN_VARIABLE = "AGENTFLOWS_VIEWER_TOKEN"
ENVIRONMENT_PREFIXES = ("AGENTFLOWS_", "AWS_")
"""Variables the settings are read from (a change to any of them is a new configuration)."""


class Settings(BaseModel):
    """Resolved settings of one configuration."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    home: Path
    result_storage: Path | str
    """A local folder, or the slug of a saved Prefect filesystem block
    (e.g. `remote-file-system/agentflows-results` pointing at `s3://…`)."""
    definitions: Path | None = None
    """The definitions folder named by `AGENTFLOWS_DEFINITIONS`; None: the shipped one."""
    provider: ProviderSettings | None = None
    """The endpoint `provider: default` and `openai` mean; None: the offline provider."""
    store: StoreSettings
    """Where content is stored, unless `store_block` names a saved Block."""
    store_block: str | None = None
    viewer_url: str | None = None
    """Base URL of the content viewer (no trailing slash); None: artifacts link to the stored files."""
    viewer_token: SecretStr | None = None
    """The token the content viewer asks every request for; None: no token."""
    knowledge_roots: tuple[Path, ...] = ()
    """Local folders (and what is below them) that a run's knowledge input may name."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings the environment describes; raises `ConfigurationError` naming a bad variable."""
        env = os.environ if environ is None else environ
        home = Path(_get(env, HOME_VARIABLE) or user_data_path("agentflows")).expanduser()
        definitions = _get(env, DEFINITIONS_VARIABLE)
        return cls(
            home=home,
            result_storage=_result_storage(_get(env, RESULT_STORAGE_VARIABLE), home),
            definitions=Path(definitions).expanduser().resolve() if definitions else None,
            provider=ProviderSettings.from_env(env),
            store=StoreSettings.from_env(env, home),
            store_block=_get(env, STORE_BLOCK_VARIABLE),
            viewer_url=_viewer_url(_get(env, VIEWER_URL_VARIABLE)),
            viewer_token=SecretStr(token) if (token := _get(env, VIEWER_TOKEN_VARIABLE)) else None,
            knowledge_roots=_paths(_get(env, KNOWLEDGE_ROOTS_VARIABLE)) or (home / "knowledge",),
        )


def environment_key(environ: Mapping[str, str] | None = None) -> tuple[tuple[str, str], ...]:
    """The variables settings are read from, as a hashable value."""
    env = os.environ if environ is None else environ
    return tuple(sorted((k, v) for k, v in env.items() if k.startswith(ENVIRONMENT_PREFIXES)))


def _get(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name, "").strip() or None


def _paths(value: str | None) -> tuple[Path, ...]:
    return tuple(Path(part).expanduser().resolve() for part in (value or "").split(os.pathsep) if part.strip())


def _result_storage(value: str | None, home: Path) -> Path | str:
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


def _viewer_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"{VIEWER_URL_VARIABLE}={value!r} is not an http(s) URL; give where the viewer is reached, "
            "e.g. http://127.0.0.1:4300"
        )
    return value.rstrip("/")
