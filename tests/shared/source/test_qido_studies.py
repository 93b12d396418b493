"""A selection's QIDO-RS listing against a real Orthanc: studies paged by offset, each study cut by the limit, and a
cursor that carries on exactly where the last page stopped."""
import io

import pydicom

from shared.identifiers import DicomIdentifier
from shared.settings import DicomWebSettings
from shared.source.dicomweb_store import DicomWebStore
from shared.source.protocol import Shortfall
from shared.source.qido_studies import list_selected_page
from shared.study_selection import StudySelection
from tests.dicom_samples import make_instance, new_uid
from tests.fault_proxy import EditingProxy

STUDY_UID = "0020000D"


def _with_patient(instance: DicomIdentifier, patient: str) -> bytes:
    dataset = pydicom.dcmread(io.BytesIO(make_instance(*instance.parts)))
    dataset.PatientID = patient
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_small_pages_and_limits_list_every_selected_instance_exactly_once(loop, orthanc):
    patient = f"P{new_uid()[-12:]}"  # the session's Orthanc holds other tests' studies: select this test's only
    stored = []
    for shape in ((3,), (1, 2), (4,), (1,), (2, 2)):
        study = new_uid()
        for count in shape:
            series = new_uid()
            for _ in range(count):
                stored.append(DicomIdentifier(study, series, new_uid()))
                orthanc.upload(_with_patient(stored[-1], patient))
    selection = StudySelection((("PatientID", patient),))

    async def list_all(store, limit, page):
        found, cursor, calls = [], None, 0
        while True:
            listed = await list_selected_page(store._search, selection, cursor, limit, page)
            assert len(listed.instances) <= limit and listed.shortfalls == ()
            found += listed.instances
            cursor, calls = listed.continuation, calls + 1
            if cursor is None:
                return found, calls

    async def check():
        store = DicomWebStore(DicomWebSettings(orthanc.dicomweb_url))
        try:
            for limit, page in ((3, 2), (1, 1), (5, 3), (100, 200)):
                found, calls = await list_all(store, limit, page)
                assert sorted(found, key=str) == sorted(stored, key=str) and len(found) == len(stored)
                assert calls >= -(-len(stored) // limit)
            nobody = await store.list_selected(StudySelection((("PatientID", "nobody-" + patient),)), None, 10)
            assert (nobody.instances, nobody.continuation) == ([], None)
        finally:
            await store.close()
    loop.run_until_complete(check())


def test_a_studies_search_the_server_says_was_limited_ends_with_a_stated_shortfall(loop, orthanc):
    patient = f"P{new_uid()[-12:]}"
    shown, hidden = DicomIdentifier(new_uid(), new_uid(), new_uid()), DicomIdentifier(new_uid(), new_uid(), new_uid())
    for instance in (shown, hidden):
        orthanc.upload(_with_patient(instance, patient))
    proxy = loop.run_until_complete(EditingProxy(orthanc.url).start())

    def hide_one_study(request, rows):
        if not request.path.endswith("/studies"):
            return rows, {}
        kept = [row for row in rows if row.get(STUDY_UID, {}).get("Value") != [hidden.study]]
        return kept, {"Warning": '299 orthanc: "The number of results exceeded the maximum allowed"'}
    proxy.edit_json("/studies", hide_one_study)

    async def list_once():
        store = DicomWebStore(DicomWebSettings(f"{proxy.url}/dicom-web"))
        try:
            return await list_selected_page(store._search, StudySelection((("PatientID", patient),)), None, 100, 50)
        finally:
            await store.close()
    try:
        listed = loop.run_until_complete(list_once())
    finally:
        loop.run_until_complete(proxy.stop())
    assert (listed.instances, listed.continuation) == ([shown], None)
    assert listed.shortfalls == (Shortfall("studies", 1, "at least this many: the DICOMweb server warned that its "
                                           "/studies search was limited, and no further page listed more"),)
