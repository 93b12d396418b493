"""Connects to the configured DICOM store (a blob container or a DICOMweb server), one per partition per process."""
from __future__ import annotations

from shared.cloud.clients import blob_service, cached_client, process_identity
from shared.partitions import DEFAULT_PARTITION
from shared.settings import StoreSettings
from shared.source.blob_store import BlobDicomStore
from shared.source.dicomweb_store import DicomWebStore
from shared.source.protocol import DicomStore


def connect_store(settings: StoreSettings, partition: str = DEFAULT_PARTITION) -> DicomStore:
    """The configured store's view of `partition`, one per process, reused across activities."""
    if settings.dicomweb is not None:
        web = settings.dicomweb
        credential = process_identity(web.client_id) if web.auth == "identity" else None
        return cached_client(f"dicomweb|{web}|{web.password}|{partition}",
                             lambda: DicomWebStore(web, credential, partition=partition))
    return cached_client(f"store|{settings}|{partition}",
                         lambda: BlobDicomStore(blob_service(settings), settings.container, partition))
