"""Command that loads DICOM files or folders into the DICOM store at `<study>/<series>/<sop>.dcm`, unchanged.

Usage: python -m tools.store_loader [--pydicom-samples] [--partition NAME] [PATH ...]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, List, Mapping, Optional, Sequence

from azure.storage.blob import ContainerClient
from tqdm import tqdm

from shared.errors import InvalidRequestError, ServiceConfigurationError
from shared.partitions import DEFAULT_PARTITION, parse_partition
from shared.settings import StoreSettings
from shared.source.blob_store import partition_prefix, store_blob_name
from tools.dicom_files import list_files, missing_paths, pydicom_sample_folder, read_instance_identifier
from tools.load_report import LoadReport, plural
from tools.local_settings import LOCAL_SETTINGS_FILE, read_app_settings
from tools.store_target import StoreUnreachableError, open_store, store_errors, store_location

SETTINGS_HELP = """\
settings, read as the app reads them locally: the environment first, then the "Values" of
local.settings.json beside function_app.py (bash scripts/run-local writes one for Azurite):
  DICOM_STORE                  connection string of the store's storage account
  DICOM_STORE__blobServiceUri  instead of DICOM_STORE: the account's blob endpoint, reached with your
                               Azure identity (DICOM_STORE__clientId: a user-assigned identity's client id)
  AzureWebJobsStorage          used when neither DICOM_STORE setting is present
                               (locally: UseDevelopmentStorage=true, Azurite on 127.0.0.1:10000)
  DICOM_STORE_CONTAINER        the container to load into (default: dicom)
  DICOM_STORE_TYPE             blob (the default); a DICOMweb server takes files through its own STOW-RS

exit status: 0 every file loaded; 1 some files were skipped, or a folder held none;
2 the load could not run (bad usage, settings, a missing path, or a store that cannot be reached)."""


def load_files(files: Sequence[Path], container: ContainerClient, report: LoadReport,
               say: Optional[Callable[[str], None]], advance: Callable[[], None], prefix: str = "") -> None:
    """Upload each DICOM file unchanged to its place in the store (under `prefix`, a partition's); `say` why each
    other file is skipped (None: count skips quietly); `advance` once per file."""
    for path in files:
        try:
            identifier = read_instance_identifier(path)
            name = prefix + store_blob_name(identifier)
            if name in report.names:
                raise ValueError(f"an earlier file has the same UIDs ({name})")
        except ValueError as problem:
            report.skip(str(path), str(problem), quiet=say is None)
            if say:
                say(f"skipped {path}: {problem}")
        else:
            with open(path, "rb") as data, store_errors(container):
                container.upload_blob(name, data, overwrite=True)
            report.add(name, identifier.study)
        advance()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.store_loader", description=__doc__.splitlines()[0],
                                     epilog=SETTINGS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path, help="DICOM files or folders (searched recursively) to load")
    parser.add_argument("--pydicom-samples", action="store_true",
                        help="also load pydicom's bundled sample files (its non-DICOM and repeated files are "
                             "counted, not listed)")
    parser.add_argument("--partition", default=DEFAULT_PARTITION,
                        help="the data partition to load into (default: Microsoft.Default, the store's root; another "
                             "goes to partitions/<partition>/)")
    return parser


def _store_settings(settings_file: Path, env: Mapping[str, str]) -> StoreSettings:
    """The store settings, or ServiceConfigurationError saying what to set and where it looked."""
    settings = read_app_settings(settings_file, env)
    try:
        store = StoreSettings.from_environment(settings.values)
    except ServiceConfigurationError as error:
        where = "" if settings_file.is_file() else f"; there is no {settings_file.name} beside function_app.py " \
                                                   "(bash scripts/run-local writes one)"
        raise ServiceConfigurationError(f"{error} Looked in {settings.source}{where}.") from None
    if store.dicomweb is not None:
        raise ServiceConfigurationError("DICOM_STORE_TYPE is dicomweb: this command loads a blob store only; store "
                                        "files on the DICOMweb server itself (STOW-RS).")
    return store


def main(argv: Optional[List[str]] = None, settings_file: Path = LOCAL_SETTINGS_FILE,
         env: Mapping[str, str] = os.environ) -> int:
    """Run the command; exit 0 when every named file loaded, 1 when some were skipped, 2 when none could be."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.paths and not args.pydicom_samples:
        parser.error("name at least one file or folder, or --pydicom-samples")
    try:
        partition = parse_partition(args.partition)
    except InvalidRequestError as error:
        parser.error(str(error))
    prefix = partition_prefix(partition)
    missing = missing_paths(args.paths)
    for path in missing:
        print(f"cannot load {path}: no such file or folder", file=sys.stderr)
    if missing:
        return 2
    files, empty_folders = list_files(args.paths)
    for folder in empty_folders:
        print(f"the folder {folder} holds no files", file=sys.stderr)
    samples = list_files([pydicom_sample_folder()])[0] if args.pydicom_samples else []
    if not files and not samples:
        return 1
    try:
        container = open_store(_store_settings(settings_file, env))
        print(f"Loading {plural(len(files) + len(samples), 'file')} into {store_location(container)}")
        report = LoadReport()
        with tqdm(total=len(files) + len(samples), unit="file", disable=None) as bar:
            def say(line: str) -> None:
                bar.write(line, file=sys.stderr)
            load_files(files, container, report, say, bar.update, prefix)
            load_files(samples, container, report, None, bar.update, prefix)
    except (ServiceConfigurationError, StoreUnreachableError) as error:
        print(error, file=sys.stderr)
        return 2
    print("\n".join(report.summary(store_location(container))))
    return 1 if report.skipped or empty_folders else 0


if __name__ == "__main__":
    sys.exit(main())
