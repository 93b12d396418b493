"""Command that loads DICOM files or folders into the DICOM store at `<study>/<series>/<sop>.dcm`.

Usage: python -m tools.store_loader [--pydicom-samples] [PATH ...]
Reads DICOM_STORE / AzureWebJobsStorage and DICOM_STORE_CONTAINER like the app; a non-DICOM file is reported and skipped.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Tuple

import pydicom
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient, ContainerClient
from pydicom.errors import InvalidDicomError

from shared.cloud.identity import app_identity
from shared.errors import ServiceConfigurationError
from shared.identifiers import DicomIdentifier, uid_problem
from shared.settings import StoreSettings
from shared.source.blob_store import store_blob_name

_UID_TAGS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


@dataclass
class LoadReport:
    """What a load did: the blob names written and each file skipped with its reason."""

    loaded: List[str] = field(default_factory=list)
    skipped: List[Tuple[str, str]] = field(default_factory=list)


def read_instance_identifier(path: Path) -> DicomIdentifier:
    """The study, series and SOP instance UIDs of a DICOM file; raise ValueError saying why a file is unusable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # encoding quirks of a readable file do not matter for its UIDs
            dataset = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(_UID_TAGS))
    except (InvalidDicomError, EOFError) as error:
        raise ValueError(f"not a DICOM file ({error})") from None
    except Exception as error:  # pydicom raises many types for damaged files; each file is reported, not fatal
        raise ValueError(f"not a readable DICOM file ({type(error).__name__}: {error})") from None
    uids = []
    for tag in _UID_TAGS:
        value = str(getattr(dataset, tag, "") or "").strip()
        problem = uid_problem(value)
        if problem:
            raise ValueError(f"its {tag} '{value}' is unusable: {problem}")
        uids.append(value)
    return DicomIdentifier(*uids)


def expand_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Every file named, and every file under each folder named, in a stable order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        else:
            yield path


def load_files(paths: Iterable[Path], container: ContainerClient, report: Optional[LoadReport] = None) -> LoadReport:
    """Upload each DICOM file unchanged to its place in the store; report and skip the rest."""
    report = report or LoadReport()
    seen = set(report.loaded)
    for path in expand_paths(paths):
        try:
            name = store_blob_name(read_instance_identifier(path))
        except ValueError as problem:
            report.skipped.append((str(path), str(problem)))
            continue
        if name in seen:
            report.skipped.append((str(path), f"an earlier file has the same UIDs ({name})"))
            continue
        seen.add(name)
        with open(path, "rb") as data:
            container.upload_blob(name, data, overwrite=True)
        report.loaded.append(name)
    return report


def pydicom_sample_folder() -> Path:
    """The folder of sample files that pydicom ships (available offline)."""
    return Path(pydicom.__file__).parent / "data" / "test_files"


def store_container(settings: StoreSettings) -> ContainerClient:
    """A sync client on the store's container, created if missing."""
    if settings.connection_string:
        service = BlobServiceClient.from_connection_string(settings.connection_string)
    else:
        service = BlobServiceClient(settings.service_uri, credential=app_identity(settings.client_id, False))
    container = service.get_container_client(settings.container)
    try:
        container.create_container()
    except ResourceExistsError:
        pass
    return container


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command; exit 0 when every named file loaded, 1 when some were skipped, 2 on bad usage.

    pydicom's sample folder holds non-DICOM files and repeats by design: its skips are counted, not listed.
    """
    parser = argparse.ArgumentParser(prog="python -m tools.store_loader", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="DICOM files or folders to load")
    parser.add_argument("--pydicom-samples", action="store_true", help="also load pydicom's bundled sample files")
    args = parser.parse_args(argv)
    if not args.paths and not args.pydicom_samples:
        parser.error("name at least one file or folder, or --pydicom-samples")
    try:
        settings = StoreSettings.from_environment()
    except ServiceConfigurationError as error:
        print(error, file=sys.stderr)
        return 2
    if settings.dicomweb is not None:
        print("DICOM_STORE_TYPE is dicomweb: this command loads a blob store only; store files on the DICOMweb "
              "server itself (STOW-RS).", file=sys.stderr)
        return 2
    container = store_container(settings)
    report = load_files(args.paths, container)
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    named_skips = len(report.skipped)
    if args.pydicom_samples:
        load_files([pydicom_sample_folder()], container, report)
    print(f"loaded {len(report.loaded)} instances into container '{settings.container}', "
          f"skipped {len(report.skipped)} files that are not DICOM or repeat another file's UIDs")
    return 1 if named_skips else 0


if __name__ == "__main__":
    sys.exit(main())
