"""Applies the Basic Profile and the chosen options to a pydicom Dataset in place (a header, or trailing elements)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet, Optional

from pydicom.datadict import DicomDictionary
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import UID, UID_dictionary

from shared.deid import profile_table as table
from shared.deid.identifying import identifying_values, is_clean
from shared.deid.options import DeidOptions
from shared.deid.pseudonyms import Pseudonyms
from shared.deid.refusal import NotDeidentifiableError
from shared.deid.safe_private import is_safe
from shared.deid.values import dummy, shift_date, shift_datetime

METHOD = "PS3.15 E.1 Basic Profile; exported by the DICOM export service"   # LO: at most 64 characters
_KEPT_UID_KEYWORDS = ("CodingSchemeUID", "MappingResourceUID")
# File meta kept: version, SOP class and instance, transfer syntax. The rest (AE titles, presentation addresses,
# RTV and private information, unknown elements) is removed; pydicom writes its own implementation UID and name.
_META_KEPT = (0x00020001, 0x00020002, 0x00020003, 0x00020010)
_TEMPORAL_STATE = {None: "REMOVED", "modified": "MODIFIED", "full": "UNMODIFIED"}


@dataclass(frozen=True)
class DeidContext:
    """What the profile needs about the instance, taken from its header before any change."""

    options: DeidOptions
    pseudonyms: Pseudonyms
    day_offset: int
    identifying: FrozenSet[str]
    modality: Optional[str]


def profile_context(dataset: Dataset, options: DeidOptions, pseudonyms: Pseudonyms) -> DeidContext:
    """The context for `dataset` (the instance's original header); call it before changing the dataset.

    The day offset comes from PatientID and IssuerOfPatientID: instances without them share one offset."""
    patient_id = str(dataset.get("PatientID", "") or "")
    issuer = str(dataset.get("IssuerOfPatientID", "") or "")
    modality = dataset.get("Modality")
    cleans = options.clean_descriptors or options.retain_patient_characteristics   # the options with C rows
    return DeidContext(options, pseudonyms, pseudonyms.day_offset(patient_id, issuer),
                       identifying_values(dataset, options) if cleans else frozenset(),
                       str(modality) if modality else None)


def check_visual_identity(dataset: Dataset, options: DeidOptions) -> None:
    """Refuse an instance whose pixels are declared to identify the patient, unless the request allows it."""
    if options.allow_burned_in_annotation:
        return
    for keyword, words in (("BurnedInAnnotation", "burned-in annotation"),
                           ("RecognizableVisualFeatures", "recognizable visual features")):
        if str(dataset.get(keyword, "") or "").strip().upper() == "YES":
            raise NotDeidentifiableError(
                f"The instance has {words} ({keyword} is YES); it is not exported unless "
                "'deidentify.allowBurnedInAnnotation' is true.")


def deidentify_dataset(dataset: Dataset, options: DeidOptions, pseudonyms: Pseudonyms,
                       context: Optional[DeidContext] = None) -> None:
    """De-identify an instance's dataset (and its `file_meta`, if any) in place; raise NotDeidentifiableError for
    an instance that must not be exported."""
    check_visual_identity(dataset, options)
    context = context or profile_context(dataset, options, pseudonyms)
    apply_profile(dataset, context)
    meta = getattr(dataset, "file_meta", None)
    if meta is not None:
        _file_meta(meta, dataset, context)
    _mark(dataset, options)


def apply_profile(dataset: Dataset, context: DeidContext) -> None:
    """Apply the table's actions to every element of `dataset` and its sequences (nothing is added)."""
    _private(dataset, context)
    for tag in list(dataset.keys()):
        if tag.is_private:
            continue
        if tag.element == 0 or table.is_curve_or_overlay(int(tag)):   # group lengths go stale: remove them
            del dataset[tag]
            continue
        element = dataset[tag]
        if element.keyword == "PatientID":
            if element.value:
                element.value = context.pseudonyms.patient_id(str(element.value))
            continue
        _apply(dataset, element, table.action(int(tag), element.VR, context.options), context)


def _apply(dataset: Dataset, element, action: Optional[str], context: DeidContext) -> None:
    if action is None:
        action = _default_action(element, context)
    if action == table.CLEAN_TEXT:
        if element.VR != "SQ" and all(is_clean(str(v), context.identifying) for v in _values(element)):
            return
        code = table.BASIC.get(int(element.tag))
        action = table.action(int(element.tag), element.VR, DeidOptions()) if code else table.REMOVE
    if action == table.KEEP:
        if element.VR == "SQ":
            for item in element.value:
                apply_profile(item, context)
    elif action == table.REMOVE:
        del dataset[element.tag]
    elif action == table.EMPTY:
        element.value = Sequence() if element.VR == "SQ" else None
    elif action in (table.DUMMY, table.MAP_UID):
        if element.VR == "UI":      # with retain_uids, the UID column's rows are K and never come here
            _map_uids(element, context)
        else:
            element.value = dummy(element.VR)
    elif action == table.SHIFT_DATE:
        shift = shift_date if element.VR == "DA" else shift_datetime
        shifted = [shift(str(v), context.day_offset) for v in _values(element)]
        element.value = shifted if len(shifted) > 1 else (shifted[0] if shifted else None)


def _default_action(element, context: DeidContext) -> str:
    """For an element the table does not list: UIDs are mapped, dates shifted (modified dates), URLs (VR UR, such
    as Retrieve URL, which name hosts and hold original UIDs) and unknown public elements of VR UN removed, the rest
    kept."""
    tag, vr, options = int(element.tag), element.VR, context.options
    if vr == "UI":
        standard_kind = "ClassUID" in element.keyword or "TransferSyntaxUID" in element.keyword \
            or element.keyword in _KEPT_UID_KEYWORDS
        kept = options.retain_uids or (standard_kind and all(UID(str(v)).is_valid for v in _values(element)))
        return table.KEEP if kept else table.MAP_UID   # a class "UID" that is no UID may hide anything: mapped
    if vr in ("DA", "DT") and options.temporal == "modified" and tag not in table.PATIENT_BIRTH_AND_GPS:
        return table.SHIFT_DATE
    if vr == "UR":
        return table.REMOVE
    if vr == "UN" and tag not in DicomDictionary:
        return table.REMOVE
    return table.KEEP


def _values(element) -> list:
    value = element.value
    if value is None or value == "":
        return []
    return list(value) if element.VM > 1 else [value]


def _map_uids(element, context: DeidContext) -> None:
    mapped = [v if not v or v in UID_dictionary else context.pseudonyms.uid(str(v)) for v in _values(element)]
    if mapped:
        element.value = mapped if element.VM > 1 else mapped[0]


def _private(dataset: Dataset, context: DeidContext) -> None:
    """Remove private elements, except those of the safe list (with their creators) under Retain Safe Private."""
    private = [tag for tag in dataset.keys() if tag.is_private]
    kept, creators = set(), set()
    if context.options.retain_safe_private:
        for tag in private:
            if tag.element >= 0x1000:
                creator_tag = Tag(tag.group, tag.element >> 8)
                creator = dataset[creator_tag].value if creator_tag in dataset else None
                vr = dataset[tag].VR
                if is_safe(str(creator) if creator is not None else None, int(tag), context.modality, vr):
                    kept.add(tag)
                    creators.add(creator_tag)
    for tag in private:
        if tag not in kept and tag not in creators:
            del dataset[tag]


def _file_meta(meta: Dataset, dataset: Dataset, context: DeidContext) -> None:
    for tag in [tag for tag in meta.keys() if int(tag) not in _META_KEPT]:
        del meta[tag]
    for mine, its in (("MediaStorageSOPInstanceUID", "SOPInstanceUID"), ("MediaStorageSOPClassUID", "SOPClassUID")):
        if its in dataset:
            setattr(meta, mine, dataset[its].value)
        elif mine in meta:
            _apply(meta, meta[mine], None, context)     # the instance UID mapped, a valid class UID kept


def _mark(dataset: Dataset, options: DeidOptions) -> None:
    """PatientIdentityRemoved, the method (text and CID 7050 codes, added to any earlier ones), 0028,0303."""
    dataset.PatientIdentityRemoved = "YES"
    earlier = [str(v) for v in _values(dataset["DeidentificationMethod"])] if "DeidentificationMethod" in dataset \
        else []
    methods = earlier + [METHOD]
    dataset.DeidentificationMethod = methods if len(methods) > 1 else METHOD
    items = list(dataset.get("DeidentificationMethodCodeSequence", None) or [])
    for value, meaning in options.method_codes():
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
        items.append(item)
    dataset.DeidentificationMethodCodeSequence = Sequence(items)
    dataset.LongitudinalTemporalInformationModified = _TEMPORAL_STATE[options.temporal]
