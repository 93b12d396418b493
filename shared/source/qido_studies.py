"""QIDO-RS listing of the studies a selection picks: `/studies` paged with its filters, then each study in turn."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import List, Optional

from shared.identifiers import DicomIdentifier
from shared.source.protocol import InstancePage, Shortfall, StoreRefusedError
from shared.source.qido_listing import (
    STUDY_INSTANCES,
    STUDY_UID,
    KeyedListing,
    Search,
    first_value,
    list_page,
)
from shared.study_selection import StudySelection


@dataclass(frozen=True)
class _Cursor:
    """Where a selection's listing goes on: the `/studies` page (by offset), the study to go on with on it, and where
    inside that study (None: from its start)."""

    offset: int = 0
    study: str = ""
    inner: Optional[str] = None

    @classmethod
    def parse(cls, text: Optional[str]) -> "_Cursor":
        value = json.loads(text) if text else {}
        return cls(value.get("offset", 0), value.get("study", ""), value.get("inner"))

    def text(self) -> str:
        return json.dumps({"offset": self.offset, "study": self.study, "inner": self.inner}, separators=(",", ":"))


def _refusal(selection: StudySelection) -> StoreRefusedError:
    keywords = ", ".join(keyword for keyword, _ in selection.filters) or "no filter"
    return StoreRefusedError(f"The DICOMweb server refused the search for studies by {keywords} (400 Bad Request): "
                             "it may not support one of these filters.")


async def list_selected_page(search: Search, selection: StudySelection, continuation: Optional[str], limit: int,
                             page: int) -> InstancePage:
    """Up to `limit` instances of the studies that `/studies` with the selection's filters finds, in the server's
    order, each study listed as `list_page` lists one (with its shortfalls); the cursor names the page and study.

    Studies are read `page` at a time by offset, past answers a Warning says were limited; a study added or removed
    while the export runs may shift that order, so it may be missed or listed twice.
    """
    at = _Cursor.parse(continuation)
    studies = KeyedListing(search, "/studies", STUDY_UID, None, (STUDY_INSTANCES,), page)
    instances: List[DicomIdentifier] = []
    shortfalls: List[Shortfall] = []
    offset = at.offset
    while True:
        reading = await studies.read(offset, page, None, dict(selection.filters))
        if reading.refused:
            raise _refusal(selection)
        uids = [first_value(row, STUDY_UID) for row in reading.rows]
        start = uids.index(at.study) if offset == at.offset and at.study in uids else 0
        for uid in uids[start:]:
            if len(instances) >= limit:
                return InstancePage(instances, _Cursor(offset, uid).text(), tuple(shortfalls))
            inner = at.inner if offset == at.offset and uid == at.study else None
            part = await list_page(search, DicomIdentifier(uid), inner, limit - len(instances), page)
            instances.extend(part.instances)
            shortfalls.extend(part.shortfalls)
            if part.continuation is not None:
                return InstancePage(instances, _Cursor(offset, uid, part.continuation).text(), tuple(shortfalls))
        if reading.ended:
            if reading.limited:  # a Warning said more studies match, and no further offset brought them
                shortfalls.append(Shortfall("studies", 1, "at least this many: the DICOMweb server warned that its "
                                            "/studies search was limited, and no further page listed more"))
            return InstancePage(instances, None, tuple(shortfalls))
        offset = reading.offset
        if len(instances) >= limit:
            return InstancePage(instances, _Cursor(offset).text(), tuple(shortfalls))
