"""Credentials in URLs and secret values never survive `masked`, and what they name does."""

from __future__ import annotations

import pytest

from agentflows.tasks.masking import environment_secrets, masked


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://agent:SECRET@127.0.0.1:8000/v1", "http://agent:***@127.0.0.1:8000/v1"),
        ("postgresql+psycopg://user:p%40ss@db:5432/x", "postgresql+psycopg://user:***@db:5432/x"),
        ("at https://u:SECRET@h/v1 answered 401 Unauthorized", "at https://u:***@h/v1 answered 401 Unauthorized"),
        ("sqlite:///x.db?password=SECRET&mode=ro", "sqlite:///x.db?password=***&mode=ro"),
        ("https://s3/b/k?X-Amz-Signature=SECRET", "https://s3/b/k?X-Amz-Signature=***"),
        ("postgresql://postgres@127.0.0.1/db", "postgresql://postgres@127.0.0.1/db"),
        ("got 'agent:SECRET@localhost:8000/v1'", "got 'agent:***@localhost:8000/v1'"),
        ("mailto user@example.org at 10:30", "mailto user@example.org at 10:30"),
    ],
)
def test_passwords_in_urls_are_masked_and_the_rest_is_kept(text: str, shown: str) -> None:
    assert masked(text) == shown
    assert "SECRET" not in masked(text)


def test_secret_values_of_the_environment_are_masked_wherever_they_occur() -> None:
    env = {"AGENTFLOWS_LLM_API_KEY": "sk-live-123", "AWS_SECRET_ACCESS_KEY": "wJalr/K7", "AGENTFLOWS_HOME": "/h"}

    secrets = environment_secrets(env)

    assert sorted(secrets) == ["sk-live-123", "wJalr/K7"]
    assert masked("key sk-live-123 and wJalr/K7 in /h", secrets) == "key *** and *** in /h"
