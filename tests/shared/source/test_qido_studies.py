"""A selection's QIDO-RS listing against a real Orthanc: studies paged by offset, each study cut by the limit, and a
cursor that carries on exactly where the last page stopped."""
import io

import pydicom

from shared.identifiers import DicomIdentifier
from shared.settings import DicomWebSettings
from shared.source.dicomweb_store import DicomWebStore
from shared.source.qido_studies import list_selected_page
from shared.study_selection import StudySelection
from tests.dicom_samples import make_instance, new_uid


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
