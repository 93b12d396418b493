"""Generated DICOM files with identifying values planted everywhere, and helpers to stream and inspect them."""
from __future__ import annotations

import asyncio
import hashlib
import io
import struct
from typing import AsyncIterator, Dict, List, Optional, Tuple

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian, MRImageStorage, RLELossless,
                         generate_uid)

from shared.deid.options import DeidOptions
from shared.deid.pseudonyms import Pseudonyms
from shared.deid.stream import deidentified_chunks

KEY = b"test key for de-identification, 32+ bytes"
ROOT = "1.2.826.0.1.3680043.8.498."
STUDY_DATE = "20190314"
# Every value below is unique enough that finding it in an output means it leaked.
SECRETS = {
    "PatientName": "Zorblatt^Quentin^Xavier", "PatientID": "PZQ-4471-X", "IssuerOfPatientID": "QUIMBYHOSP",
    "PatientBirthDate": "19610923", "PatientAddress": "42 Wallaby Way Sydney", "AccessionNumber": "ACCZQ99173",
    "InstitutionName": "Saint Quimby Memorial", "InstitutionAddress": "17 Evergreen Terrace",
    "ReferringPhysicianName": "Hibbert^Julius", "PerformingPhysicianName": "Riviera^Nicholas",
    "OperatorsName": "Smithers^Waylon", "StationName": "QSTATION7", "DeviceSerialNumber": "SN-QX-5521",
    "StudyID": "STUDYZQ1", "OtherPatientID": "OTHERPID77", "RequestedProcedureID": "RPZQ12",
    "ScheduledProcedureStepID": "SPZQ34", "PrivateValue": "SECRETPRIVVALUE", "TrailerPrivate": "TRAILSECRET",
    "StudyDescription": "Head CT for Zorblatt", "ImageComments": "reviewed by Hibbert on 20190314",
    "StudyTime": "101500", "AcquisitionDateTime": "20190314101502.123",
}
CLEAN_SERIES_DESCRIPTION = "AXIAL HEAD"


def _base(sop_class: str, syntax: str, study: str, series: str, patient: Dict[str, str], modality: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid(ROOT)
    ds.file_meta.SourceApplicationEntityTitle = "QSOURCEAE"
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, generate_uid(ROOT)
    ds.Modality = modality
    ds.PatientName, ds.PatientID = patient["PatientName"], patient["PatientID"]
    ds.IssuerOfPatientID, ds.PatientBirthDate = patient["IssuerOfPatientID"], patient["PatientBirthDate"]
    ds.PatientAddress = patient["PatientAddress"]
    ds.PatientSex, ds.PatientAge, ds.PatientWeight = "F", "057Y", 61.5
    ds.OtherPatientIDsSequence = Sequence([Dataset()])
    ds.OtherPatientIDsSequence[0].PatientID = patient["OtherPatientID"]
    ds.AccessionNumber, ds.StudyID = patient["AccessionNumber"], patient["StudyID"]
    ds.InstitutionName, ds.InstitutionAddress = SECRETS["InstitutionName"], SECRETS["InstitutionAddress"]
    ds.ReferringPhysicianName = SECRETS["ReferringPhysicianName"]
    ds.PerformingPhysicianName = SECRETS["PerformingPhysicianName"]
    ds.OperatorsName, ds.StationName = SECRETS["OperatorsName"], SECRETS["StationName"]
    ds.DeviceSerialNumber = SECRETS["DeviceSerialNumber"]
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = STUDY_DATE
    ds.StudyTime, ds.AcquisitionDateTime = SECRETS["StudyTime"], SECRETS["AcquisitionDateTime"] + "+0100"
    ds.StudyDescription = SECRETS["StudyDescription"].replace("Zorblatt", patient["PatientName"].split("^")[0])
    ds.SeriesDescription, ds.ImageComments = CLEAN_SERIES_DESCRIPTION, SECRETS["ImageComments"]
    request = Dataset()
    request.AccessionNumber = patient["AccessionNumber"]
    request.RequestedProcedureID = SECRETS["RequestedProcedureID"]
    request.ScheduledProcedureStepID = SECRETS["ScheduledProcedureStepID"]
    ds.RequestAttributesSequence = Sequence([request])
    block = ds.private_block(0x0029, "ACME PRIVATE 1", create=True)
    block.add_new(0x01, "LO", SECRETS["PrivateValue"])
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    return ds


def _reference(sop_class: str, sop: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = sop_class, sop
    return item


def _encode(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def patient(number: int) -> Dict[str, str]:
    """Patient 1 has the SECRETS; patient 2 differs in every patient-level value."""
    values = dict(SECRETS)
    if number != 1:
        values.update(PatientName="Vexley^Ottoline", PatientID="PVX-9902-Q", PatientBirthDate="19720101",
                      AccessionNumber="ACCVX22881", StudyID="STUDYVX2", OtherPatientID="OTHERPID88")
    return values


def planted_study() -> Dict[str, bytes]:
    """A: CT series 1 (explicit VR LE) with elements after its pixel data (7FE0,0020, private 7FE1, FFFA, FFFC);
    B: CT series 1 (implicit VR LE) that references A; C: MR series 2 (RLE, encapsulated) with Siemens diffusion
    private tags and a nested reference to A; D: another patient's CT (explicit VR LE)."""
    study, series1, series2 = generate_uid(ROOT), generate_uid(ROOT), generate_uid(ROOT)
    files = {}
    a = _base(CTImageStorage, ExplicitVRLittleEndian, study, series1, patient(1), "CT")
    a.PixelData = bytes(range(256)) * 2
    a.SOPInstanceUIDOfConcatenationSource = generate_uid(ROOT)      # a UID the table does not list: mapped too
    a.add_new(0x7FE00020, "OW", b"\x01\x02\x03\x04")        # a public element after the pixel data: kept
    trailing = a.private_block(0x7FE1, "GEMS_Ultrasound_MovieGroup_001", create=True)
    trailing.add_new(0x01, "LO", SECRETS["TrailerPrivate"])
    signature = Dataset()
    signature.MACIDNumber, signature.DigitalSignatureUID = 1, generate_uid(ROOT)
    a.DigitalSignaturesSequence = Sequence([signature])
    a.add_new(0xFFFCFFFC, "OB", b"\0" * 4096)
    files["A"] = _encode(a)
    b = _base(CTImageStorage, ImplicitVRLittleEndian, study, series1, patient(1), "CT")
    b.PixelData = bytes(reversed(range(256))) * 2
    b.ReferencedImageSequence = Sequence([_reference(CTImageStorage, a.SOPInstanceUID)])
    b.SourceImageSequence = Sequence([_reference(CTImageStorage, a.SOPInstanceUID)])
    files["B"] = _encode(b)
    c = _base(MRImageStorage, RLELossless, study, series2, patient(1), "MR")
    c.PixelData = encapsulate([b"\x01fragment-one" + bytes(50), b"\x02fragment-two" + bytes(51)])
    c["PixelData"].VR = "OB"
    siemens = c.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    siemens.add_new(0x0C, "IS", "1000")
    siemens.add_new(0x0A, "LO", "NOTSAFEVALUE")
    series_ref = Dataset()
    series_ref.SeriesInstanceUID = series1
    series_ref.ReferencedInstanceSequence = Sequence([_reference(CTImageStorage, a.SOPInstanceUID)])
    c.ReferencedSeriesSequence = Sequence([series_ref])
    files["C"] = _encode(c)
    d = _base(CTImageStorage, ExplicitVRLittleEndian, generate_uid(ROOT), generate_uid(ROOT), patient(2), "CT")
    d.PixelData = bytes(512)
    files["D"] = _encode(d)
    return files


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def deidentify(data: bytes, options: DeidOptions = DeidOptions(), key: bytes = KEY,
               chunk: int = 1 << 20) -> bytes:
    """The whole output of deidentified_chunks for `data` streamed in `chunk`-byte pieces."""
    async def collect() -> bytes:
        return b"".join([piece async for piece in deidentified_chunks(_chunks(data, chunk), options,
                                                                       Pseudonyms(key))])
    return asyncio.run(collect())


def read(data: bytes, **kwargs) -> pydicom.FileDataset:
    """pydicom's full read of a file's bytes."""
    return pydicom.dcmread(io.BytesIO(data), **kwargs)


def all_uids(data: bytes) -> List[str]:
    """Every UI value of the file (meta, dataset, sequences), except the standard's own UIDs."""
    ds = read(data)
    found = [str(ds.file_meta.MediaStorageSOPInstanceUID)]
    ds.walk(lambda _, e: found.extend(str(v) for v in (e.value if e.VM > 1 else [e.value]))
            if e.VR == "UI" and e.value else None)
    return sorted({u for u in found if u not in pydicom.uid.UID_dictionary})


def pixel_span(data: bytes) -> Tuple[int, int]:
    """(start, end) of the pixel data element, tag through value or sequence delimiter, found with pydicom and
    struct only (independently of the code under test)."""
    handle = io.BytesIO(data)
    ds = pydicom.dcmread(handle, stop_before_pixels=True)
    start = handle.tell()
    implicit, little = ds.original_encoding
    order = "<" if little else ">"
    group, element = struct.unpack(order + "HH", data[start:start + 4])
    assert (group, element) == (0x7FE0, 0x0010)
    if implicit:
        header, length = 8, struct.unpack(order + "L", data[start + 4:start + 8])[0]
    else:
        header, length = 12, struct.unpack(order + "L", data[start + 8:start + 12])[0]
    position = start + header
    if length != 0xFFFFFFFF:
        return start, position + length
    while True:
        tag = struct.unpack(order + "HH", data[position:position + 4])
        item_length = struct.unpack(order + "L", data[position + 4:position + 8])[0]
        position += 8
        if tag == (0xFFFE, 0xE0DD):
            return start, position
        position += item_length


def pixel_digest(data: bytes) -> str:
    """sha256 of the raw pixel data element."""
    start, end = pixel_span(data)
    return hashlib.sha256(data[start:end]).hexdigest()


def with_header_changes(data: bytes, **changes) -> bytes:
    """The file read by pydicom, with the given attributes set, written again."""
    ds = read(data)
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    return _encode(ds)


def first_chunk_or_error(data: bytes, options: DeidOptions = DeidOptions()) -> Optional[bytes]:
    """The first chunk deidentified_chunks yields (the error propagates if it raises before yielding)."""
    async def first() -> bytes:
        generator = deidentified_chunks(_chunks(data, 512), options, Pseudonyms(KEY))
        try:
            return await generator.__anext__()
        finally:
            await generator.aclose()
    return asyncio.run(first())
