"""Identical work runs once: a one-slot Prefect global concurrency limit per unit of work (issue 22).

A unit of work is a period's preprocessing or a training data set (``name_work``). A flow run takes the
limit's slot with a lease (``hold_work_lock``); a second flow run for the same work waits for the first,
then finds its cached result. Chosen over a transaction with ``isolation_level=SERIALIZABLE``: Prefect's
file lock manager only serialises processes of one host and keeps the lock of a killed process for
ever, while the server's lease expires ``WORK_LEASE_S`` after its holder stops renewing it, whichever
worker or host that was.

The limits are made on first use and removed when idle (``sweep_idle_limits``, after each release):
a work limit that no one holds and no one took for ``WORK_LEASE_S`` has nobody waiting on it
(a waiter takes a freed slot within seconds), so deleting it cannot let two runs in. A run that still
finds its limit gone at that moment (a deletion racing its first acquisition) makes it again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect.utilities.hashing import hash_objects

from orchestration.flows.api_loss import is_api_outage

log = logging.getLogger(__name__)

WORK_NAME = re.compile(r"^to-bikes-[a-z]+-[0-9a-f]{16}$")  # what name_work makes
WORK_LEASE_S = 120  # a crashed holder's slot is free again this long after its last renewal
ACQUIRE_TRIES = 3  # a limit deleted between its creation and the acquisition is made again
PAGE = 200


def name_work(stage: str, *parts: object) -> str:
    """A concurrency-limit name for one unit of work: the stage and a digest of what decides it."""
    return f"to-bikes-{stage}-{hash_objects(*parts)[:16]}"


def ensure_work_limit(client: Any, name: str) -> None:
    """The one-slot global concurrency limit ``name``, created on first use (a race is harmless)."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    try:
        client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
        except ObjectAlreadyExists:
            log.debug("concurrency limit %s was created by another run", name)


def acquire_slot(name: str) -> ExitStack:
    """The slot of ``name``, held with a lease until the returned stack is closed."""
    from prefect import get_client

    # The error `concurrency` documents for a limit that does not exist (public in the asyncio module).
    from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
    from prefect.concurrency.sync import concurrency

    for attempt in range(1, ACQUIRE_TRIES + 1):
        with get_client(sync_client=True) as client:
            ensure_work_limit(client, name)
        slot = ExitStack()
        try:
            # A lease that cannot be renewed (the API is down) is no reason to fail the work done:
            # it expires WORK_LEASE_S later.
            lease = {"lease_duration": WORK_LEASE_S, "raise_on_lease_renewal_failure": False}
            slot.enter_context(concurrency(name, occupy=1, strict=True, **lease))
            return slot
        except ConcurrencySlotAcquisitionError as exc:
            if "must be created" not in str(exc) or attempt == ACQUIRE_TRIES:
                raise
            log.info("concurrency limit %s was removed while idle; making it again", name)
    raise AssertionError("not reached")


@contextmanager
def hold_work_lock(name: str) -> Iterator[None]:
    """Do the work called ``name`` in one flow run at a time (see the module docstring)."""
    log.info("waiting for the slot of %s (another run may be doing the same work)", name)
    slot = acquire_slot(name)
    try:
        yield
    except Exception as exc:
        if is_api_outage(exc):  # no release over a dead API (a retry span); the lease expires
            raise
        release_slot(slot, name)
        raise
    if release_slot(slot, name):
        sweep_quietly()


def release_slot(slot: ExitStack, name: str) -> bool:
    """Give the slot back; when the API cannot be reached, leave it to expire (one warning)."""
    import httpx

    try:
        slot.close()
    except httpx.HTTPError as exc:
        log.warning("could not release %s (%s); it expires in %s s", name, exc, WORK_LEASE_S)
        return False
    return True


def sweep_quietly() -> None:
    """``sweep_idle_limits`` after a release; an API error there leaves them to the next run's sweep."""
    import httpx

    try:
        sweep_idle_limits()
    except httpx.HTTPError as exc:
        log.info("idle work limits not swept this time: %s", exc)


def sweep_idle_limits(idle_s: float = WORK_LEASE_S) -> list[str]:
    """Delete the project's work limits that nobody held for ``idle_s`` seconds; their names."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    cutoff = datetime.now(UTC) - timedelta(seconds=idle_s)
    deleted = []
    with get_client(sync_client=True) as client:
        for limit in read_work_limits(client):
            if limit.active_slots or limit.updated is None or limit.updated > cutoff:
                continue
            try:
                client.delete_global_concurrency_limit_by_name(limit.name)
            except ObjectNotFound:
                continue  # another run swept it first
            deleted.append(limit.name)
    if deleted:
        log.info("removed %s idle work limit(s)", len(deleted))
    return deleted


def read_work_limits(client: Any) -> list[Any]:
    """Every global concurrency limit made by ``name_work`` (all pages)."""
    found: list[Any] = []
    while True:
        page = client.read_global_concurrency_limits(limit=PAGE, offset=len(found))
        found += page
        if len(page) < PAGE:
            break
    return [limit for limit in found if WORK_NAME.match(limit.name)]
