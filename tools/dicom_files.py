"""The DICOM files a load names: which files a path holds, and the UIDs that place each file in the store."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable, List, Tuple

import pydicom
from pydicom.errors import InvalidDicomError

from shared.identifiers import DicomIdentifier, uid_problem

_UID_TAGS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
_PYDICOM_HINT = " Use force=True to force reading."


def read_instance_identifier(path: Path) -> DicomIdentifier:
    """The study, series and SOP instance UIDs of a DICOM file; raise ValueError saying why a file is unusable."""
    try:
        empty = path.stat().st_size == 0
    except OSError as error:
        raise ValueError(f"cannot be read: {error.strerror or error}") from None
    if empty:
        raise ValueError("not a DICOM file: it is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # encoding quirks of a readable file do not matter for its UIDs
            dataset = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(_UID_TAGS))
    except (InvalidDicomError, EOFError):
        raise ValueError("not a DICOM file: it lacks the 'DICM' prefix and File Meta Information header that a "
                         "DICOM file starts with") from None
    except OSError as error:
        raise ValueError(f"cannot be read: {error.strerror or error}") from None
    except Exception as error:  # pydicom raises many types for damaged files; each file is reported, not fatal
        detail = str(error).replace(_PYDICOM_HINT, "")
        raise ValueError(f"not a readable DICOM file ({type(error).__name__}: {detail})") from None
    uids = []
    for tag in _UID_TAGS:
        value = str(getattr(dataset, tag, "") or "").strip()
        problem = uid_problem(value)
        if problem:
            raise ValueError(f"its {tag} '{value}' is unusable: {problem}")
        uids.append(value)
    return DicomIdentifier(*uids)


def missing_paths(paths: Iterable[Path]) -> List[Path]:
    """The paths named that do not exist."""
    return [path for path in paths if not path.exists()]


def list_files(paths: Iterable[Path]) -> Tuple[List[Path], List[Path]]:
    """Every file named and every file under each folder named, in a stable order; and the folders without files."""
    files: List[Path] = []
    empty_folders: List[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file())
            if not found:
                empty_folders.append(path)
            files.extend(found)
        else:
            files.append(path)
    return files, empty_folders


def pydicom_sample_folder() -> Path:
    """The folder of sample files that pydicom ships (available offline)."""
    return Path(pydicom.__file__).parent / "data" / "test_files"
