"""QIDO-RS listings of a study or series, complete or naming what they miss, checked against the server's counts."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, Tuple
from urllib.parse import quote

from shared.identifiers import DicomIdentifier
from shared.source.protocol import InstancePage, Shortfall

STUDY_INSTANCES, STUDY_SERIES, SERIES_INSTANCES = "00201208", "00201206", "00201209"
STUDY_UID, SERIES_UID, SOP_UID = "0020000D", "0020000E", "00080018"
SERIES_NUMBER, INSTANCE_NUMBER = ("00200011", "SeriesNumber"), ("00200013", "InstanceNumber")
NUMBER_WINDOW = 100  # the most numbers one narrowing query lists (keeps its URL short)
NARROWING_QUERIES = 2000  # the most narrowing queries one listing spends before it settles for a shortfall
_UNBOUNDED = 1 << 62

Row = Dict[str, Any]


@dataclass(frozen=True)
class QidoAnswer:
    """One QIDO-RS answer: its rows, whether a Warning said they were limited, whether the server refused the query."""

    rows: List[Row]
    limited: bool = False
    refused: bool = False


# (path, params, refusable): one search; when refusable, a 400 answer is QidoAnswer(refused=True), not an error
Search = Callable[[str, Dict[str, str], bool], Awaitable[QidoAnswer]]


def first_value(row: Row, tag: str) -> str:
    """The first value of `tag` in a DICOM JSON row; ValueError when it has none."""
    values = row.get(tag, {}).get("Value") or []
    if not values or not isinstance(values[0], str):
        raise ValueError(f"A QIDO-RS answer row has no value for tag {tag}.")
    return values[0]


def _integer(row: Row, tag: str) -> Optional[int]:
    values = row.get(tag, {}).get("Value") or []
    try:
        return int(str(values[0]).strip()) if values else None
    except ValueError:
        return None


def _count(row: Row, tag: str) -> Optional[int]:
    number = _integer(row, tag)  # a listed study or series holds something: a count of 0 is a placeholder
    return number if number is not None and number > 0 else None


def _whole(listed: int, expected: Optional[int], limited: bool) -> bool:
    return listed >= expected if expected is not None else not limited


@dataclass(frozen=True)
class _Reading:
    rows: List[Row]
    offset: int  # the offset after the last row read
    ended: bool
    limited: bool  # the answers ended on a Warning that more exist
    refused: bool = False


@dataclass(frozen=True)
class Narrowed:
    """What narrowing found: every row (paging's first), how it ended, and how many answers stayed limited."""

    rows: List[Row]
    note: str
    limited: int = 0


@dataclass
class _Narrowing:
    found: Dict[str, Row]
    reach: int  # the most rows paging reached: a list answering that many may be capped too
    counted: bool
    queries: int = 0
    answered: int = 0
    limited: int = 0
    refused: bool = False


class KeyedListing:
    """One QIDO-RS search (a study's series or a series' instances) whose rows are told apart by a UID tag.

    It pages past short answers that the server's count or a Warning says are not the end and, when paging cannot reach
    everything, narrows the search by lists of numbers (SeriesNumber, InstanceNumber): besides limit and offset, the
    one matching key that both the standard and Orthanc accept for splitting a listing (neither allows UID wildcards).
    """

    def __init__(self, search: Search, path: str, key: str, number: Optional[Tuple[str, str]], fields: Sequence[str],
                 page: int):
        self._search, self._path, self._key, self._number, self._page = search, path, key, number, page
        self._params = {"includefield": ",".join([*(number[:1] if number else ()), *fields])}  # None: never narrowed

    async def read(self, offset: int, room: int, expected: Optional[int],
                   narrowed: Optional[Dict[str, str]] = None) -> _Reading:
        """Up to `room` rows from `offset`; ended once `expected` rows were passed, an answer brings nothing new, or
        (count unknown) a short answer carries no Warning."""
        rows: List[Row] = []
        seen, limited = set(), False
        while len(rows) < room and (expected is None or offset < expected):
            asked = min(room - len(rows), self._page)
            params = {**self._params, **(narrowed or {}), "limit": str(asked), "offset": str(offset)}
            answer = await self._search(self._path, params, narrowed is not None)
            if answer.refused:
                return _Reading(rows, offset, True, False, refused=True)
            fresh = [row for row in answer.rows if first_value(row, self._key) not in seen]
            seen.update(first_value(row, self._key) for row in fresh)
            offset += len(answer.rows)
            rows.extend(fresh)
            limited = answer.limited or (limited and not fresh)
            if not fresh or (len(answer.rows) < asked and not answer.limited and expected is None):
                return _Reading(rows, offset, True, limited)
        return _Reading(rows, offset, expected is not None and offset >= expected, limited)

    async def reaches(self, index: int) -> bool:
        """Whether paging reaches row `index` (from 0): a server capping every answer at some total does not."""
        answer = await self._search(self._path, {**self._params, "limit": "1", "offset": str(index)}, False)
        return bool(answer.rows)

    async def everything(self, expected: Optional[int]) -> Narrowed:
        """Every row that paging, or else narrowing, reaches."""
        reading = await self.read(0, _UNBOUNDED, expected)
        if _whole(len(reading.rows), expected, reading.limited):
            return Narrowed(reading.rows, "")
        return await self.narrowed(reading.rows, expected)

    async def narrowed(self, sample: List[Row], expected: Optional[int]) -> Narrowed:
        """`sample` (what paging reached), then the other rows found by asking for consecutive lists of numbers.

        A list answered with as many rows as paging reached (or with a Warning) may be capped too: it is halved.
        The lists run from the lowest number seen (or 0) until the count is reached or, past both the highest number
        seen and lowest + count - 1, until a list matches nothing.
        """
        state = _Narrowing({first_value(row, self._key): row for row in sample}, len(sample), expected is not None)
        numbers = [n for n in (_integer(row, self._number[0]) for row in sample) if n is not None]
        width = max(1, min(len(sample) - 1, NUMBER_WINDOW))
        value = min(numbers + [0])
        last = max(numbers + [value + (expected or 0) - 1])
        matched = True
        while ((expected is None or len(state.found) < expected) and (value <= last or matched)
               and state.queries < NARROWING_QUERIES and not state.refused):
            before = state.answered
            await self._window(value, value + width - 1, state)
            matched, value = state.answered > before, value + width
        name = self._number[1]
        note = (f"and it refused or ignored queries by lists of {name}" if state.refused
                else f"and asking by {name} stopped after {NARROWING_QUERIES} queries"
                if state.queries >= NARROWING_QUERIES else f"even when asked by {name}")
        return Narrowed(list(state.found.values()), note, state.limited)

    async def _window(self, first: int, last: int, state: _Narrowing) -> None:
        if state.queries >= NARROWING_QUERIES:
            return
        state.queries += 1
        wanted = range(first, last + 1)
        reading = await self.read(0, _UNBOUNDED, None, {self._number[1]: ",".join(map(str, wanted))})
        if reading.refused or any(_integer(row, self._number[0]) not in wanted for row in reading.rows):
            state.refused = True
            return
        if (reading.limited or (state.counted and len(reading.rows) >= state.reach)) and last > first:
            middle = (first + last) // 2
            await self._window(first, middle, state)
            await self._window(middle + 1, last, state)
            return
        state.limited += reading.limited
        state.answered += len(reading.rows)
        for row in reading.rows:
            state.found.setdefault(first_value(row, self._key), row)


@dataclass(frozen=True)
class _Position:
    """Where a study or series listing goes on: `{"series", "offset"}`, plus `"narrowed": 1` when that series is
    listed by narrowing (then `offset` counts rows of the narrowed listing, which is rebuilt on every call)."""

    series: str = ""
    offset: int = 0
    narrowed: bool = False

    @classmethod
    def parse(cls, text: Optional[str]) -> "_Position":
        value = json.loads(text) if text else {}
        return cls(value.get("series", ""), value.get("offset", 0), bool(value.get("narrowed")))

    def text(self) -> str:
        value = {"series": self.series, "offset": self.offset, **({"narrowed": 1} if self.narrowed else {})}
        return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True)
class _Part:
    rows: List[Row]
    resume: Optional[_Position]  # None when the series is done
    gap: Optional[Tuple[int, str]] = None


def _gap(count: Optional[int], listed: int, limited: int, note: str) -> Optional[Tuple[int, str]]:
    if count is not None:
        if listed >= count:
            return None
        return count - listed, f"the DICOMweb server counts {count} instances in this series but lists {listed}, {note}"
    if limited:
        return limited, (f"at least this many: the DICOMweb server warned that its answers were limited and does not "
                         f"count the instances in this series, {note}")
    return None


async def _series_part(listing: KeyedListing, series: str, count: Optional[int], at: _Position, room: int) -> _Part:
    offset, narrowed = (at.offset, at.narrowed) if at.series == series else (0, False)
    if not narrowed and offset == 0 and count is not None and count > room:
        narrowed = not await listing.reaches(count - 1)  # decided before any row of the series is handed out
    if not narrowed:
        reading = await listing.read(offset, room, count)
        if not reading.ended:
            return _Part(reading.rows, _Position(series, reading.offset))
        if offset == 0 and not _whole(len(reading.rows), count, reading.limited):
            sample = reading.rows
        else:  # whole, or short after an earlier page handed out part of the series: too late to narrow
            gap = _gap(count, reading.offset, int(reading.limited), "and paging stopped short")
            return _Part(reading.rows, None, gap)
    else:
        sample = (await listing.read(0, _UNBOUNDED, count)).rows
    found = await listing.narrowed(sample, count)
    end = offset + room
    if end < len(found.rows):
        return _Part(found.rows[offset:end], _Position(series, end, True))
    return _Part(found.rows[offset:], None, _gap(count, len(found.rows), found.limited, found.note))


def _study_gap(study: Row, series: Narrowed) -> Optional[Tuple[int, str]]:
    total, series_total = _count(study, STUDY_INSTANCES), _count(study, STUDY_SERIES)
    counts = [_count(row, SERIES_INSTANCES) for row in series.rows]
    listed = f"lists {len(series.rows)} series" + (f" of {series_total}" if series_total is not None else "")
    note = f", {series.note}" if series.note else ""
    if total is not None and None not in counts:
        held = sum(c for c in counts if c is not None)
        return (total - held, (f"the DICOMweb server counts {total} instances in this study but {listed}, "
                               f"holding {held}{note}")) if held < total else None
    if series_total is not None and len(series.rows) < series_total:
        return series_total - len(series.rows), f"at least this many: the DICOMweb server {listed}{note}"
    if series.limited:  # no counts to say how many, but the server said its series listing was cut short
        return series.limited, (f"at least this many: the DICOMweb server warned that its list of this study's "
                                f"series was limited and does not count them{note}")
    return None


async def list_page(search: Search, identifier: DicomIdentifier, continuation: Optional[str], limit: int,
                    page: int) -> InstancePage:
    """Up to `limit` instances of a study (series in UID order) or a series, and a shortfall for each study or series
    whose instances the server counts but would not list; an unknown study or series lists nothing."""
    at, study = _Position.parse(continuation), identifier.study
    series_path = f"/studies/{quote(study, safe='')}/series"
    study_row: Optional[Row] = None
    if identifier.level == "series":
        answer = await search(series_path, {"SeriesInstanceUID": identifier.series,
                                            "includefield": SERIES_INSTANCES}, False)
        series = Narrowed([row for row in answer.rows if first_value(row, SERIES_UID) == identifier.series], "")
    else:
        answer = await search("/studies", {"StudyInstanceUID": study,
                                           "includefield": f"{STUDY_INSTANCES},{STUDY_SERIES}"}, False)
        study_row = next((row for row in answer.rows if first_value(row, STUDY_UID) == study), None)
        if study_row is None:
            return InstancePage([], None)
        series = await KeyedListing(search, series_path, SERIES_UID, SERIES_NUMBER, [SERIES_INSTANCES],
                                    page).everything(_count(study_row, STUDY_SERIES))
    instances: List[DicomIdentifier] = []
    shortfalls: List[Shortfall] = []
    for row in sorted(series.rows, key=lambda r: first_value(r, SERIES_UID)):
        uid = first_value(row, SERIES_UID)
        if uid < at.series:
            continue
        if len(instances) >= limit:
            return InstancePage(instances, _Position(uid).text(), tuple(shortfalls))
        listing = KeyedListing(search, f"{series_path}/{quote(uid, safe='')}/instances", SOP_UID, INSTANCE_NUMBER,
                               (), page)
        part = await _series_part(listing, uid, _count(row, SERIES_INSTANCES), at, limit - len(instances))
        instances.extend(DicomIdentifier(study, uid, first_value(r, SOP_UID)) for r in part.rows)
        if part.gap:
            shortfalls.append(Shortfall(f"{study}/{uid}", *part.gap))
        if part.resume:
            return InstancePage(instances, part.resume.text(), tuple(shortfalls))
    gap = _study_gap(study_row, series) if study_row is not None else None
    if gap:
        shortfalls.append(Shortfall(study, *gap))
    return InstancePage(instances, None, tuple(shortfalls))
