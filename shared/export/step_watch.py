"""The cancel protocol: a running step registers and keeps a lease on its operation; a withdrawal revokes and drains.

A step may send a request to the destination only while its lease is valid: its last check that the operation's
sealed destination still exists was sent less than LEASE_SECONDS ago. The watcher renews the lease every
POLL_SECONDS and survives failed or stalled checks (the lease simply runs out). Every destination request carries a
server timeout of WRITE_TIMEOUT_SECONDS, so once a withdrawal has revoked the destination, no step sends another
request after LEASE_SECONDS and none sent before takes effect after a further WRITE_TIMEOUT_SECONDS: after
`drain_bound()` nothing of the operation's can be written, whether or not its steps said they ended.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Optional

from azure.core.exceptions import AzureError

from shared.destination import write_gate
from shared.export.work_store import QUICK, STEP_ENDED, STEP_STATE, OperationRevokedError, WorkStore

POLL_SECONDS = 1.0
POLL_TIMEOUT_SECONDS = 3.0
LEASE_SECONDS = 10.0
STALL_LIMIT_SECONDS = 60.0
CLOCK_MARGIN_SECONDS = 5.0


class LeaseExpiredError(Exception):
    """The step could not confirm for too long that its operation goes on; it stops writing and is retried later."""


async def _nothing() -> None:
    return None


def drain_bound() -> float:
    """Seconds after revocation by which no write of the operation's can take effect any more."""
    return LEASE_SECONDS + write_gate.WRITE_TIMEOUT_SECONDS + CLOCK_MARGIN_SECONDS


def _now() -> float:
    return asyncio.get_running_loop().time()


class StepWatch:
    """One running step: its `active/<id>` marker, and its lease on the operation renewed by a background watcher."""

    def __init__(self, work: WorkStore, operation_id: str, reads: Optional[Callable[[], Awaitable[Any]]] = None):
        self._work = work
        self._operation_id = operation_id
        self._reads = reads
        self.sealed = ""
        self.read: Any = None
        self._confirmed_at: Optional[float] = None
        self._poller: Optional[asyncio.Task] = None
        self._marker = None
        self._stopping = False
        self.revoked = False
        self.failed_checks = 0

    async def __aenter__(self) -> "StepWatch":
        """Register, then confirm the operation goes on by reading its sealed destination (kept in `sealed`); raise
        OperationRevokedError when it has ended.

        The step's opening `reads` of its working files (their result in `read`) go out with that read, since they
        write nothing to the destination: registering must come first (see `withdraw`), the rest need not wait.
        """
        self._marker = await self._work.register_step(self._operation_id)
        try:
            sent = _now()
            self.sealed, self.read = await asyncio.gather(
                asyncio.wait_for(self._work.load_sealed_destination(self._operation_id), POLL_TIMEOUT_SECONDS),
                self._reads() if self._reads else _nothing())
            self._confirmed_at = sent
        except BaseException:
            await self._mark_ended()
            raise
        self._poller = asyncio.ensure_future(self._watch())
        return self

    async def __aexit__(self, *exc_info) -> None:
        """Stop watching and mark the step ended.

        Python 3.11's `asyncio.wait_for` can swallow a cancellation that arrives as the awaited check completes
        (CPython gh-86296), so the watcher also stops at its stop flag, and it is cancelled again until it has ended.
        """
        self._stopping = True
        try:
            while not self._poller.done():
                self._poller.cancel()
                await asyncio.wait({self._poller}, timeout=POLL_TIMEOUT_SECONDS)
        finally:
            await self._mark_ended()

    def lease_valid(self) -> bool:
        """Whether the last confirmation that the operation goes on is recent enough to send a request now."""
        return self._confirmed_at is not None and _now() - self._confirmed_at < LEASE_SECONDS

    def check(self) -> None:
        """Raise unless a request to the destination may be sent now (the write gate calls this before each one)."""
        if self.revoked:
            raise OperationRevokedError(f"Export {self._operation_id} was canceled or has ended; nothing more is "
                                        "written.")
        if not self.lease_valid():
            raise LeaseExpiredError(f"Export {self._operation_id}: the step could not confirm for {LEASE_SECONDS:g} s "
                                    "that the operation goes on, so it stopped writing.")

    async def admit(self) -> bool:
        """Wait until a new copy may start: True when it may, False once revoked; LeaseExpiredError after a long stall."""
        deadline = _now() + STALL_LIMIT_SECONDS
        while not self.revoked:
            if self.lease_valid():
                return True
            if _now() >= deadline:
                self.check()
            await asyncio.sleep(POLL_SECONDS)
        return False

    async def _check(self) -> None:
        sent = _now()
        revoked = await asyncio.wait_for(self._work.is_revoked(self._operation_id), POLL_TIMEOUT_SECONDS)
        if revoked:
            self.revoked = True
        else:
            self._confirmed_at = sent

    async def _watch(self) -> None:
        while not self.revoked and not self._stopping:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self._check()
                self.failed_checks = 0
            except (AzureError, asyncio.TimeoutError, OSError) as error:
                self.failed_checks += 1
                if self.failed_checks == 1 or self.failed_checks % 20 == 0:
                    logging.warning("Export %s: checking whether the operation goes on failed %d time(s) in a row "
                                    "(%s); the step writes nothing while its lease has run out.",
                                    self._operation_id, self.failed_checks, type(error).__name__)

    async def _mark_ended(self) -> None:
        for attempt in range(3):
            try:
                await asyncio.wait_for(self._marker.set_blob_metadata({STEP_STATE: STEP_ENDED}, **QUICK),
                                       POLL_TIMEOUT_SECONDS)
                return
            except (AzureError, asyncio.TimeoutError, OSError) as error:
                if getattr(error, "status_code", None) == 404:
                    return  # the work container is gone with the operation
                await asyncio.sleep(POLL_SECONDS * (attempt + 1))
        logging.warning("Export %s: a step could not mark itself ended; a cancel waits out its drain bound.",
                        self._operation_id)


async def withdraw(work: WorkStore, operation_id: str) -> None:
    """Revoke the operation's destination, wait until no step can write any more, then delete its working files.

    It waits until every registered step has marked itself ended, or `drain_bound()` seconds at most.
    """
    await work.revoke(operation_id)
    deadline = _now() + drain_bound()
    while _now() < deadline:
        try:
            if not await asyncio.wait_for(work.running_steps(operation_id), POLL_TIMEOUT_SECONDS):
                break
        except (AzureError, asyncio.TimeoutError, OSError) as error:
            logging.warning("Export %s: listing its running steps failed (%s); waiting on.", operation_id,
                            type(error).__name__)
        await asyncio.sleep(POLL_SECONDS)
    await work.discard(operation_id)
