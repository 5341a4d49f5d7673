"""A run's Prefect clients: one of each kind for the whole run, on one TLS context for the process.

Prefect builds a certificate-verifying TLS context, reading certifi's CA bundle, for
every client it creates (tens of milliseconds each); `prefect_clients()` builds the
run's two clients on one context made once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prefect import flow, get_client, task

from agentflows.tasks.prefect_api import api_tls_context, prefect_clients

pytestmark = pytest.mark.usefixtures("prefect_server")


@task
async def clients_in_a_task() -> tuple[int, int]:
    return id(get_client()), id(get_client(sync_client=True))


@flow
async def clients_in_a_flow() -> tuple[int, int]:
    return await clients_in_a_task()


def _tls(client: Any) -> Any:
    return client._client._transport._pool._ssl_context


def test_the_flow_its_tasks_and_the_caller_share_the_clients_of_prefect_clients() -> None:
    async def run() -> tuple[tuple[int, int], tuple[int, int], Any]:
        async with prefect_clients():
            outside = (id(get_client()), id(get_client(sync_client=True)))
            inside = await clients_in_a_flow()
            return outside, inside, (_tls(get_client()), _tls(get_client(sync_client=True)))

    first_outside, first_inside, first_tls = asyncio.run(run())
    _, _, second_tls = asyncio.run(run())

    assert first_outside == first_inside
    assert first_tls == second_tls == (api_tls_context(), api_tls_context())


def test_clients_already_open_are_kept() -> None:
    async def nested() -> bool:
        async with prefect_clients():
            outer = get_client(), get_client(sync_client=True)
            async with prefect_clients():
                return (get_client(), get_client(sync_client=True)) == outer

    assert asyncio.run(nested())
