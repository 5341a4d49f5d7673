"""Credentials kept out of everything agentflows prints or stores.

URLs are where credentials hide: a model endpoint `http://agent:SECRET@host/v1`,
a database `postgresql+psycopg://user:password@db/agentflows`, an S3-compatible
endpoint, a query string `?password=…`. Contracts:

- `masked(text)` replaces, in every URL inside `text` (one URL, an error message,
  a log line), the password of its user info and the values of credential-like
  query parameters by `***`; everything else is kept, so the URL still says which
  host, port, database or bucket is meant. Each of `secrets` (API keys, secret
  access keys) is replaced wherever it occurs.
- Messages agentflows writes name URLs through these, at the point the message is
  made, so what reaches a Prefect log, a state message or a result file is already
  masked; the CLI passes each line it prints through `masked` once more.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MASK = "***"
_USER_INFO = re.compile(
    r"(?P<head>(?:[A-Za-z][A-Za-z0-9+.-]*://|(?<![\w/:@.-]))[\w.%+~-]*):(?P<password>[^\s/@'\"]+)@(?=[\w\[])"
)
"""`user:password@host`, after a scheme or where a word starts (a URL given without its scheme)."""
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&][A-Za-z_-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|signature|credential)"
    r"[A-Za-z_-]*=)(?P<value>[^&\s'\"]+)",
    re.IGNORECASE,
)
SECRET_VARIABLES = re.compile(r"(API_KEY|SECRET|TOKEN|PASSWORD)", re.IGNORECASE)
"""Environment variables whose values are secrets wherever they appear."""


def masked(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every URL's credentials, and every one of `secrets`, replaced by `***`."""
    text = _USER_INFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m['head']}{MASK}", text)
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def environment_secrets(environ: Mapping[str, str]) -> list[str]:
    """Values of the variables that hold secrets (`AGENTFLOWS_LLM_API_KEY`, `AWS_SECRET_ACCESS_KEY`, …)."""
    return [value for name, value in environ.items() if SECRET_VARIABLES.search(name) and value.strip()]
