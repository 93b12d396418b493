"""One bad instance never fails the export: instances a DICOMweb server will not serve (a persistent 500, an HTML
error page, a part that is not DICOM) are tried again, then named in errors.log; everything else arrives byte for byte."""
import pytest

from tests.dicom_samples import make_instance, new_uid
from tests.export_client import assert_manifest_matches, container_settings, error_lines, export_body, run_export
from tests.fault_proxy import FaultProxy

HTML = "<!DOCTYPE html><html><body><h1>Service temporarily unavailable</h1></body></html>"
NOT_DICOM = ("--B\r\nContent-Type: application/dicom\r\n\r\n" + "%PDF-1.7 " * 40 + "\r\n--B--\r\n")


@pytest.fixture
def poisoned_orthanc(loop, orthanc, monkeypatch):
    """The app reads the session's Orthanc through a fault-injecting proxy."""
    proxy = loop.run_until_complete(FaultProxy(orthanc.url).start())
    monkeypatch.setenv("DICOM_STORE_TYPE", "dicomweb")
    monkeypatch.setenv("DICOMWEB_URL", f"{proxy.url}/dicom-web")
    yield proxy
    loop.run_until_complete(proxy.stop())


def test_poison_instances_are_skipped_and_named_while_the_rest_arrive_byte_for_byte(loop, host, azurite, orthanc,
                                                                                   destination, poisoned_orthanc):
    study, series = new_uid(), new_uid()
    sops = [new_uid() for _ in range(7)]
    stored = {sop: orthanc.stored_file(orthanc.upload(make_instance(study, series, sop))) for sop in sops}
    failing, html, pdf = sops[1], sops[4], sops[6]
    retrieve = f"/series/{series}/instances/"
    poisoned_orthanc.fail_next(100, 500, {"Retry-After": "0"}, method="GET", path_part=retrieve + failing)
    poisoned_orthanc.fail_next(100, 200, {"Content-Type": "text/html"}, method="GET", path_part=retrieve + html,
                               body=HTML)
    poisoned_orthanc.fail_next(100, 200, {"Content-Type": 'multipart/related; type="application/dicom"; boundary=B'},
                               method="GET", path_part=retrieve + pdf, body=NOT_DICOM)

    state = run_export(loop, host, export_body([study], container_settings(azurite, destination.container_name)))

    operation_id = state["operationId"]
    assert (state["status"], state["results"]["exported"], state["results"]["skipped"]) == ("succeeded", 4, 3)
    server = f"{poisoned_orthanc.url}/dicom-web"
    assert sorted((line["identifier"], line["error"]) for line in error_lines(destination, operation_id)) == sorted([
        (f"{study}/{series}/{failing}", f"The DICOMweb server {server} answered 500 Internal Server Error 4 times. "
                                        "The copy was tried 2 times."),
        (f"{study}/{series}/{html}", f"Reading an instance from the DICOMweb server {server} failed (MultipartError: "
                                     "expected a multipart Content-Type with a boundary, got 'text/html'). "
                                     "The copy was tried 2 times."),
        (f"{study}/{series}/{pdf}", "The DICOM store answered with a body that is not a DICOM file (no 'DICM' after "
                                    "the 128-byte preamble; it starts with '%PDF-1.7 %PDF-1.'). The copy was tried 2 "
                                    "times.")])
    tries = [r["path"] for r in poisoned_orthanc.requests if r["method"] == "GET" and retrieve + failing in r["path"]]
    assert len(tries) == 8  # 4 requests per attempt (Retry-After: 0), 2 attempts, then the instance is skipped
    entries = assert_manifest_matches(destination, operation_id)
    assert sorted(entry["identifier"].rsplit("/", 1)[1] for entry in entries) == sorted(set(sops) - {failing, html, pdf})
    for sop in set(sops) - {failing, html, pdf}:
        assert destination.download_blob(f"{operation_id}/results/{study}/{series}/{sop}.dcm").readall() == stored[sop]


def test_a_store_that_serves_nothing_is_an_outage_that_fails_the_export_saying_so(loop, host, azurite, orthanc,
                                                                                destination, poisoned_orthanc):
    study, series = new_uid(), new_uid()
    for _ in range(12):
        sop = new_uid()
        orthanc.upload(make_instance(study, series, sop))
    poisoned_orthanc.fail_next(10_000, 503, {"Retry-After": "0"}, method="GET", path_part="/instances/")

    state = run_export(loop, host, export_body([study], container_settings(azurite, destination.container_name)))

    assert (state["status"], state["results"]["exported"], state["results"]["skipped"]) == ("failed", 0, 0)
    assert state["errors"][0].startswith("The DICOM store could not serve 10 instances in a row, each tried 2 times; "
                                         "it looks unavailable (last: The DICOMweb server ")
    assert error_lines(destination, state["operationId"]) == []  # an outage is not ten bad instances
