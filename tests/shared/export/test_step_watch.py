"""The cancel protocol on Azurite, with faults: leases, a watcher that survives failed and stalled checks, the drain."""
import asyncio
import logging
import uuid

import pytest

from shared.allowlist import DestinationAllowlist
from shared.destination import write_gate
from shared.destination.validation import parse_destination
from shared.destination.write_gate import writes_permitted_by
from shared.export import step_watch
from shared.export.step_watch import LeaseExpiredError, StepWatch, drain_bound, withdraw
from shared.export.work_store import OperationRevokedError, WorkStore
from shared.settings import WorkSettings
from tests.azurite import ACCOUNT, KEY
from tests.export_client import working_files


@pytest.fixture
def short_lease(monkeypatch):
    """A 1 s lease, a 1 s server timeout and fast checks, so the protocol's bounds are seconds long."""
    monkeypatch.setattr(step_watch, "LEASE_SECONDS", 1.0)
    monkeypatch.setattr(step_watch, "POLL_SECONDS", 0.2)
    monkeypatch.setattr(step_watch, "POLL_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setattr(step_watch, "STALL_LIMIT_SECONDS", 30.0)
    monkeypatch.setattr(step_watch, "CLOCK_MARGIN_SECONDS", 0.2)
    monkeypatch.setattr(write_gate, "WRITE_TIMEOUT_SECONDS", 1)


def _connection_string(endpoint: str) -> str:
    return f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={endpoint}/{ACCOUNT};"


def _work(loop, endpoint: str) -> WorkStore:
    return loop.run_until_complete(WorkStore.connect(WorkSettings("dicom-export",
                                                                  connection_string=_connection_string(endpoint))))


def _new_operation(loop, work) -> str:
    operation_id = uuid.uuid4().hex
    loop.run_until_complete(work.create(operation_id))
    loop.run_until_complete(work.save_sealed_destination(operation_id, "sealed"))
    return operation_id


def test_withdraw_waits_for_a_running_step_but_not_for_one_that_ended(loop, azurite, blob_service):
    work = _work(loop, f"http://127.0.0.1:{azurite.port}")
    operation_id = _new_operation(loop, work)
    events = []

    async def scenario():
        async with StepWatch(work, operation_id):  # a step that has ended leaves an ended marker behind
            pass
        async with StepWatch(work, operation_id) as running:
            withdrawing = asyncio.ensure_future(withdraw(work, operation_id))
            while not running.revoked:
                await asyncio.sleep(0.05)
            events.append(("revoked seen", withdrawing.done(), running.lease_valid()))
            with pytest.raises(OperationRevokedError):
                running.check()
            await asyncio.sleep(0.5)
            events.append(("still running", withdrawing.done(), await running.admit()))
        await withdrawing
        events.append(("withdrawn", True, None))
    loop.run_until_complete(scenario())
    assert events == [("revoked seen", False, True), ("still running", False, False), ("withdrawn", True, None)]
    assert working_files(blob_service, operation_id) is None


def test_a_step_ends_even_when_its_watcher_swallows_the_cancellation(loop, azurite, short_lease, monkeypatch):
    """Python 3.11's wait_for can swallow a cancellation that arrives as its check completes (CPython gh-86296): the
    watcher looped on and the step's exit waited for it forever, so the export never finished."""
    work = _work(loop, f"http://127.0.0.1:{azurite.port}")
    operation_id = _new_operation(loop, work)
    real_check = StepWatch._check
    swallowed = []

    async def check_swallowing_cancellation(self):
        try:
            await asyncio.sleep(0.3)
        except asyncio.CancelledError:
            swallowed.append("cancellation")  # as wait_for does when the inner result is ready at the same time
        await real_check(self)

    async def step():
        async with StepWatch(work, operation_id):
            monkeypatch.setattr(StepWatch, "_check", check_swallowing_cancellation)
            await asyncio.sleep(0.35)  # the watcher is inside a check

    async def scenario():
        running = asyncio.ensure_future(step())
        await asyncio.wait({running}, timeout=5)  # (wait_for would cancel the step, which then ends: no proof)
        ended = running.done()
        running.cancel()
        return ended
    assert loop.run_until_complete(scenario()) is True, "the step's exit waited for its watcher for 5 s"
    assert swallowed == ["cancellation"]


def test_a_step_counts_as_running_until_it_ends(loop, azurite):
    work = _work(loop, f"http://127.0.0.1:{azurite.port}")
    operation_id = _new_operation(loop, work)

    async def scenario():
        counts = []
        for _ in range(2):
            async with StepWatch(work, operation_id):
                counts.append(await work.running_steps(operation_id))
        counts.append(await work.running_steps(operation_id))
        return counts
    assert loop.run_until_complete(scenario()) == [1, 1, 0]


def test_a_step_of_a_revoked_operation_is_refused_and_leaves_no_running_marker(loop, azurite):
    work = _work(loop, f"http://127.0.0.1:{azurite.port}")
    operation_id = _new_operation(loop, work)
    loop.run_until_complete(work.revoke(operation_id))

    async def enter():
        async with StepWatch(work, operation_id):
            pass
    with pytest.raises(OperationRevokedError, match=f"Export {operation_id} has ended; its destination is revoked."):
        loop.run_until_complete(enter())
    assert loop.run_until_complete(work.running_steps(operation_id)) == 0


@pytest.mark.parametrize("fault", ["503", "stall"])
def test_the_watcher_survives_failed_and_stalled_checks_and_still_sees_the_revocation(loop, proxy, short_lease,
                                                                                     caplog, fault):
    work = _work(loop, proxy.url)
    operation_id = _new_operation(loop, work)
    observed = {}

    async def scenario():
        async with StepWatch(work, operation_id) as watch:
            assert watch.lease_valid() and await watch.admit()
            if fault == "503":
                proxy.fail_next(12, 503, method="HEAD", path_part="/destination")
            else:
                proxy.stall_next(4, 2.0, method="HEAD", path_part="/destination")
            while watch.lease_valid():  # the lease (1 s) runs out while the checks fail
                await asyncio.sleep(0.05)
            observed["failed checks"] = watch.failed_checks >= 1
            observed["lease during the fault"] = watch.lease_valid()
            with pytest.raises(LeaseExpiredError, match="could not confirm for 1 s that the operation goes on"):
                watch.check()
            observed["admitted after the fault"] = await watch.admit()  # waits until a check succeeds again
            observed["failures reset"] = watch.failed_checks
            await work.revoke(operation_id)
            while not watch.revoked:
                await asyncio.sleep(0.05)
            observed["admitted once revoked"] = await watch.admit()
    with caplog.at_level(logging.WARNING):
        loop.run_until_complete(scenario())
    assert observed == {"failed checks": True, "lease during the fault": False, "admitted after the fault": True,
                        "failures reset": 0, "admitted once revoked": False}
    warnings = [r.getMessage() for r in caplog.records
                if "checking whether the operation goes on failed" in r.getMessage()]
    assert warnings and warnings[0].startswith(f"Export {operation_id}: checking whether the operation goes on failed "
                                               "1 time(s) in a row (")
    assert all("127.0.0.1" not in message and "/destination" not in message for message in warnings)


def test_withdraw_is_bounded_when_a_step_never_says_it_ended(loop, azurite, short_lease, blob_service):
    work = _work(loop, f"http://127.0.0.1:{azurite.port}")
    operation_id = _new_operation(loop, work)
    loop.run_until_complete(work.register_step(operation_id))  # a step whose worker died mid-run

    async def timed():
        started = asyncio.get_running_loop().time()
        await withdraw(work, operation_id)
        return asyncio.get_running_loop().time() - started
    elapsed = loop.run_until_complete(timed())
    assert drain_bound() == pytest.approx(2.2)
    assert elapsed >= drain_bound()
    assert working_files(blob_service, operation_id) is None


def test_every_destination_request_passes_the_gate_and_carries_the_server_timeout(loop, proxy, store):
    destination = parse_destination({"connectionstring": _connection_string(proxy.url), "blobcontainername": "dicom"},
                                    DestinationAllowlist.parse("127.0.0.1"))
    refusals = []

    def refuse():
        refusals.append("checked")
        raise OperationRevokedError("revoked")

    async def scenario():
        client = destination.shared_client()
        await client.upload_blob("gate/first.txt", b"allowed", overwrite=True)
        with writes_permitted_by(refuse):
            with pytest.raises(OperationRevokedError):
                await client.upload_blob("gate/second.txt", b"refused", overwrite=True)
    loop.run_until_complete(scenario())
    writes = [r["path"] for r in proxy.requests if r["method"] == "PUT"]
    assert refusals == ["checked"]
    assert len(writes) == 1 and writes[0].startswith(f"/{ACCOUNT}/dicom/gate/first.txt?timeout=")
    assert writes[0].endswith(f"timeout={write_gate.WRITE_TIMEOUT_SECONDS}")
    assert [b.name for b in store.list_blobs(name_starts_with="gate/")] == ["gate/first.txt"]
