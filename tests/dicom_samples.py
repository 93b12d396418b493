"""Real DICOM test data: pydicom's bundled CT image re-issued under chosen UIDs."""
from __future__ import annotations

import io
import os
from functools import lru_cache

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid


@lru_cache(maxsize=1)
def _template() -> bytes:
    with open(get_testdata_file("CT_small.dcm"), "rb") as handle:
        return handle.read()


def make_instance(study: str, series: str, sop: str) -> bytes:
    """A complete DICOM file (CT_small.dcm) whose study, series and SOP instance UIDs are the ones given."""
    dataset = pydicom.dcmread(io.BytesIO(_template()))
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID = study, series, sop
    dataset.file_meta.MediaStorageSOPInstanceUID = sop
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def new_uid() -> str:
    """A fresh UID under pydicom's root."""
    return generate_uid()


def make_large_instance(study: str, series: str, sop: str, extra_bytes: int) -> bytes:
    """`make_instance` plus a private OB element of `extra_bytes` random bytes, for files of several MiB."""
    dataset = pydicom.dcmread(io.BytesIO(make_instance(study, series, sop)))
    dataset.private_block(0x0009, "export tests", create=True).add_new(0x10, "OB", os.urandom(extra_bytes))
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()
