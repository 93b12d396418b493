"""QIDO-RS listings that miss nothing silently: a real Orthanc with small result limits; a proxy editing its answers."""
import json
import urllib.request
from typing import Dict, List, Set

import pytest

from shared.identifiers import DicomIdentifier
from shared.settings import DicomWebSettings
from shared.source.dicomweb_store import DicomWebStore, warns_of_limit
from shared.source.protocol import InstancePage, Shortfall
from tests.dicom_samples import new_uid
from tests.fault_proxy import EditingProxy
from tests.orthanc import Orthanc

LIMITS = {"LimitFindInstances": 5, "LimitFindResults": 5}
COUNT_TAGS = ("00201206", "00201208", "00201209")
LIMIT_WARNING = ('299 orthanc "The number of results exceeded the maximum supported by the server. '
                 'Additional results can be requested."')


@pytest.fixture(scope="module")
def capped(orthanc) -> Orthanc:
    """An Orthanc that answers at most 5 (+1) matches per query (it depends on `orthanc` for the skip rule)."""
    server = Orthanc(settings=LIMITS).start()
    yield server
    server.close()


def _numbered_study(server: Orthanc, shape: List[int], numbered_series: bool = True,
                    numbered_instances: bool = True) -> Dict[str, Set[str]]:
    """A study with len(shape) series of shape[i] instances; SOP UIDs by series. Unnumbered means all share 1."""
    study, layout = new_uid(), {}
    for index, count in enumerate(shape, 1):
        series = new_uid()
        layout[series] = set()
        for number in range(1, count + 1):
            sop = new_uid()
            server.upload_numbered(study, series, sop, number if numbered_instances else 1,
                                   index if numbered_series else 1)
            layout[series].add(sop)
    return {"study": study, **layout}


def _run(loop, url: str, work):
    async def go():
        store = DicomWebStore(DicomWebSettings(url))
        try:
            return await work(store)
        finally:
            await store.close()
    return loop.run_until_complete(go())


async def _pages(store: DicomWebStore, identifier: DicomIdentifier, limit: int) -> List[InstancePage]:
    pages, continuation = [], None
    while True:
        pages.append(await store.list_instances(identifier, continuation, limit))
        continuation = pages[-1].continuation
        if continuation is None:
            return pages


async def _listings(store: DicomWebStore, identifiers: List[DicomIdentifier]) -> List[InstancePage]:
    return [await store.list_instances(identifier, None, 100) for identifier in identifiers]


def _listed(pages: List[InstancePage]) -> List[DicomIdentifier]:
    return [instance for page in pages for instance in page.instances]


def _expected(layout: Dict[str, Set[str]]) -> List[DicomIdentifier]:
    study = layout["study"]
    return sorted((DicomIdentifier(study, series, sop) for series, sops in layout.items() if series != "study"
                   for sop in sops), key=str)


def test_orthanc_caps_every_answer_at_its_limit_plus_one_whatever_the_offset_and_warns_nothing(capped):
    layout = _numbered_study(capped, [7])
    series = next(s for s in layout if s != "study")

    def qido(query: str):
        request = urllib.request.Request(f"{capped.dicomweb_url}/studies/{layout['study']}/series{query}",
                                         headers={"Accept": "application/dicom+json"})
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read()), response.headers.get_all("Warning")
    answers = [qido(f"/{series}/instances?limit=200&offset={offset}") for offset in (0, 5, 6)]
    assert [(len(rows), warnings) for rows, warnings in answers] == [(6, None), (1, None), (0, None)]
    counted, _ = qido("?includefield=00201209")
    assert counted[0]["00201209"] == {"vr": "IS", "Value": [7]}


@pytest.mark.parametrize("limit", [100, 4])
def test_a_capped_study_is_listed_whole_by_narrowing_every_instance_once(loop, capped, limit):
    layout = _numbered_study(capped, [7, 7, 7])
    pages = _run(loop, capped.dicomweb_url, lambda store: _pages(store, DicomIdentifier(layout["study"]), limit))
    assert sorted(_listed(pages), key=str) == _expected(layout)
    assert len(_listed(pages)) == 21
    assert [page.shortfalls for page in pages] == [()] * len(pages)
    assert all(len(page.instances) <= limit and len(json.dumps(page.continuation)) < 200 for page in pages)
    assert (limit == 4) == any('"narrowed":1' in (page.continuation or "") for page in pages)


def test_a_study_with_more_series_than_the_cap_is_listed_whole(loop, capped):
    layout = _numbered_study(capped, [2] * 7)
    pages = _run(loop, capped.dicomweb_url, lambda store: _pages(store, DicomIdentifier(layout["study"]), 100))
    assert (sorted(_listed(pages), key=str), pages[0].shortfalls) == (_expected(layout), ())


def test_instances_sharing_one_number_beyond_the_cap_are_an_exact_shortfall(loop, capped):
    layout = _numbered_study(capped, [3, 8], numbered_instances=False)
    study = layout["study"]
    small, large = (s for s in layout if s != "study")
    shortfall = Shortfall(f"{study}/{large}", 2, "the DICOMweb server counts 8 instances in this series but lists 6, "
                                                 "even when asked by InstanceNumber")
    [whole, alone] = _run(loop, capped.dicomweb_url, lambda store: _listings(
        store, [DicomIdentifier(study), DicomIdentifier(study, large)]))
    assert (len(whole.instances), len(set(whole.instances)), whole.shortfalls) == (9, 9, (shortfall,))
    assert {i.sop for i in whole.instances if i.series == small} == layout[small]
    assert {i.sop for i in whole.instances if i.series == large} == {i.sop for i in alone.instances}
    assert (len(alone.instances), alone.continuation, alone.shortfalls) == (6, None, (shortfall,))
    assert shortfall.message() == ("2 instances could not be listed: the DICOMweb server counts 8 instances in this "
                                   "series but lists 6, even when asked by InstanceNumber")


def test_series_sharing_one_number_beyond_the_cap_are_a_study_shortfall(loop, capped):
    layout = _numbered_study(capped, [2] * 7, numbered_series=False)
    [page] = _run(loop, capped.dicomweb_url, lambda store: _pages(store, DicomIdentifier(layout["study"]), 100))
    assert len(set(page.instances)) == len(page.instances) == 12
    assert page.shortfalls == (Shortfall(layout["study"], 2, (
        "the DICOMweb server counts 14 instances in this study but lists 6 series of 7, holding 12, even when asked "
        "by SeriesNumber")),)


@pytest.fixture
def editing(loop, orthanc):
    """A proxy in front of the session's (uncapped) Orthanc that can edit its JSON answers."""
    server = loop.run_until_complete(EditingProxy(orthanc.url).start())
    yield server
    loop.run_until_complete(server.stop())


def _without_counts(request, rows):
    return [{tag: value for tag, value in row.items() if tag not in COUNT_TAGS} for row in rows], {}


def _first_rows(keep: int, warn: bool, absolute: bool = False):
    """Keep the first `keep` rows of each answer (of the whole listing when `absolute`); warn when rows were cut."""
    def edit(request, rows):
        start = int(request.query.get("offset", "0")) if absolute else 0
        kept = rows[:max(0, keep - start)]
        return kept, ({"Warning": LIMIT_WARNING} if warn and len(kept) < len(rows) else {})
    return edit


def _series_of(orthanc: Orthanc, shape: List[int], numbered: bool = True):
    layout = _numbered_study(orthanc, shape, numbered_instances=numbered)
    return layout, [s for s in layout if s != "study"]


def test_rows_the_server_never_lists_are_an_exact_shortfall(loop, orthanc, editing):
    layout, (hiding, other) = _series_of(orthanc, [5, 3])
    hidden = sorted(layout[hiding])[:2]
    editing.edit_json(f"/series/{hiding}/instances",
                      lambda request, rows: ([r for r in rows if r["00080018"]["Value"][0] not in hidden], {}))
    [page] = _run(loop, editing.url + "/dicom-web",
                  lambda store: _pages(store, DicomIdentifier(layout["study"]), 100))
    assert sorted(page.instances, key=str) == [i for i in _expected(layout) if i.sop not in hidden]
    assert page.shortfalls == (Shortfall(f"{layout['study']}/{hiding}", 2, (
        "the DICOMweb server counts 5 instances in this series but lists 3, even when asked by InstanceNumber")),)


def test_short_answers_are_paged_past_while_the_count_says_more(loop, orthanc, editing):
    layout, (series,) = _series_of(orthanc, [5])
    editing.edit_json(f"/series/{series}/instances", _first_rows(2, warn=False))
    [page] = _run(loop, editing.url + "/dicom-web",
                  lambda store: _pages(store, DicomIdentifier(layout["study"], series), 100))
    assert (sorted(page.instances, key=str), page.shortfalls) == (_expected(layout), ())
    offsets = [r["path"].split("offset=")[1] for r in editing.requests if "/instances?" in r["path"]]
    assert offsets == ["0", "2", "4"]


@pytest.mark.parametrize("absolute", [False, True])
def test_without_counts_a_warning_is_paged_past_or_narrowed(loop, orthanc, editing, absolute):
    layout, (series,) = _series_of(orthanc, [5])
    editing.edit_json("/studies", _without_counts)
    editing.edit_json(f"/series/{series}/instances", _first_rows(2, warn=True, absolute=absolute))
    [page] = _run(loop, editing.url + "/dicom-web",
                  lambda store: _pages(store, DicomIdentifier(layout["study"]), 100))
    assert (sorted(page.instances, key=str), page.shortfalls) == (_expected(layout), ())
    assert any("InstanceNumber=" in r["path"] for r in editing.requests) == absolute


def test_without_counts_a_warning_narrowing_cannot_resolve_is_a_lower_bound_shortfall(loop, orthanc, editing):
    layout, (series,) = _series_of(orthanc, [5], numbered=False)
    editing.edit_json("/studies", _without_counts)
    editing.edit_json(f"/series/{series}/instances", _first_rows(2, warn=True, absolute=True))
    [page] = _run(loop, editing.url + "/dicom-web",
                  lambda store: _pages(store, DicomIdentifier(layout["study"]), 100))
    assert len(set(page.instances)) == len(page.instances) == 2
    assert page.shortfalls == (Shortfall(f"{layout['study']}/{series}", 1, (
        "at least this many: the DICOMweb server warned that its answers were limited and does not count the "
        "instances in this series, even when asked by InstanceNumber")),)


def test_without_counts_or_a_warning_a_short_answer_ends_the_listing(loop, orthanc, editing):
    layout, (series,) = _series_of(orthanc, [5])
    editing.edit_json("/studies", _without_counts)
    editing.edit_json(f"/series/{series}/instances", _first_rows(2, warn=False, absolute=True))
    [page] = _run(loop, editing.url + "/dicom-web",
                  lambda store: _pages(store, DicomIdentifier(layout["study"]), 100))
    assert (len(page.instances), page.shortfalls) == (2, ())


@pytest.mark.parametrize("warnings,limited", [
    ([LIMIT_WARNING], True),
    (['299 dicom.example "The fuzzymatching parameter is not supported. Only literal matching has been performed."'],
     False),
    (['299 - "The following includefield attributes are not supported: 00201208"'], False),
    (["299 -"], True),
    (['199 - "Miscellaneous warning about results"'], False),
    (["299: The number of results exceeded the maximum supported by the server."], True),
    (["299: The UPS is already in the requested state of CANCELED."], False),
    (['299 - "fuzzymatching not supported", 299 - "Results were truncated"'], True),
    ([], False),
])
def test_a_warning_counts_as_a_limit_when_it_speaks_of_results_or_says_nothing(warnings, limited):
    assert warns_of_limit(warnings) is limited


def test_an_old_continuation_goes_on_where_it_stopped(loop, orthanc):
    layout, series = _series_of(orthanc, [3, 4])
    first = min(series)
    continuation = json.dumps({"series": first, "offset": 1})
    page = _run(loop, orthanc.dicomweb_url,
                lambda store: store.list_instances(DicomIdentifier(layout["study"]), continuation, 100))
    assert len(page.instances) == 6 and page.continuation is None
    assert {i.sop for i in page.instances if i.series != first} == layout[max(series)]
