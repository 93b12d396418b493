"""The reference end-to-end export: real functions, real Azurite, real DICOM files."""
import pytest

from tests.dicom_samples import new_uid
from tests.export_client import assert_manifest_matches, container_settings, error_lines, export_body, run_export


@pytest.mark.parametrize("version,final_status", [(1, "completed"), (2, "succeeded")])
def test_reference_scenario_exports_nine_and_skips_three_unknown(loop, host, azurite, destination, put_instance,
                                                                 version, final_status):
    study1, study2, study3 = new_uid(), new_uid(), new_uid()
    series1a, series1b, series2, series3 = new_uid(), new_uid(), new_uid(), new_uid()
    stored = {}
    for series in (series1a, series1a, series1b):
        sop = new_uid()
        stored[(study1, series, sop)] = put_instance(study1, series, sop)
    for _ in range(3):
        sop = new_uid()
        stored[(study2, series2, sop)] = put_instance(study2, series2, sop)
    singles = [(new_uid(), new_uid(), new_uid()), (study3, new_uid(), new_uid()), (study3, series3, new_uid())]
    for key in singles:
        stored[key] = put_instance(*key)
    put_instance(study2, new_uid(), new_uid())  # another series of study2, not requested
    unknown = [f"{new_uid()}/{new_uid()}/{new_uid()}", f"{new_uid()}/{new_uid()}", new_uid()]
    values = [study1, f"{study2}/{series2}", "/".join(singles[0]), unknown[0], unknown[1],
              "/".join(singles[1]), "/".join(singles[2]), unknown[2]]

    state = run_export(loop, host, export_body(values, container_settings(azurite, destination.container_name)),
                       version)

    operation_id = state["operationId"]
    assert state["status"] == final_status
    assert state["results"]["exported"] == 9
    assert state["results"]["skipped"] == 3
    assert state["results"]["errorHref"] == f"{destination.url}/{operation_id}/errors.log"
    assert state["results"]["manifestHref"] == f"{destination.url}/{operation_id}/manifest.jsonl"
    assert len(assert_manifest_matches(destination, operation_id)) == 9
    names = sorted(b.name for b in destination.list_blobs(name_starts_with=f"{operation_id}/results/"))
    assert names == sorted(f"{operation_id}/results/{s}/{se}/{sop}.dcm" for s, se, sop in stored)
    for (s, se, sop), data in stored.items():
        assert destination.download_blob(f"{operation_id}/results/{s}/{se}/{sop}.dcm").readall() == data
    lines = error_lines(destination, operation_id)
    assert sorted(line["identifier"] for line in lines) == sorted(unknown)
    messages = {line["identifier"]: line["error"] for line in lines}
    assert messages[unknown[0]] == "The specified instance cannot be found."
    assert messages[unknown[1]] == "The specified series cannot be found."
    assert messages[unknown[2]] == "The specified study cannot be found."
    assert all(line["timestamp"].endswith("Z") for line in lines)
