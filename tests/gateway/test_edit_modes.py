"""AUTO's choice of edit mode, per intent, with and without the Kontext model and a mask."""

from __future__ import annotations

import pytest

from gateway.edit_modes import EditChoice, EditMode, KontextAvailability, choose_edit_mode
from imagegen.common.v1 import common_pb2 as pb

KON, INP, IMG = EditMode.KONTEXT, EditMode.INPAINT, EditMode.IMG2IMG

# intent → (Kontext + mask, Kontext alone, mask alone, neither): the table of docs/api.md.
TABLE = {
    pb.EDIT_INTENT_COLOR_CHANGE: (KON, KON, INP, IMG),
    pb.EDIT_INTENT_MATERIAL_CHANGE: (KON, KON, INP, IMG),
    pb.EDIT_INTENT_ADD_OBJECT: (KON, KON, INP, IMG),
    pb.EDIT_INTENT_REMOVE_OBJECT: (KON, KON, INP, IMG),
    pb.EDIT_INTENT_MINOR_EDIT: (KON, KON, INP, IMG),
    pb.EDIT_INTENT_STYLE_TRANSFER: (IMG, IMG, IMG, IMG),
    pb.EDIT_INTENT_LIGHTING_CHANGE: (IMG, IMG, IMG, IMG),
    pb.EDIT_INTENT_FULL_REIMAGINING: (IMG, IMG, IMG, IMG),
    pb.EDIT_INTENT_UNSPECIFIED: (INP, IMG, INP, IMG),
}
CASES = [
    (intent, kontext, mask, expected)
    for intent, row in TABLE.items()
    for (kontext, mask), expected in zip(
        [(True, True), (True, False), (False, True), (False, False)], row, strict=True
    )
]


def test_the_table_covers_every_image_to_image_intent() -> None:
    every = set(pb.EditIntent.values()) - {pb.EDIT_INTENT_TEXT_TO_IMAGE}
    assert set(TABLE) == every


@pytest.mark.parametrize("requested", [pb.EDIT_MODE_UNSPECIFIED, pb.EDIT_MODE_AUTO])
@pytest.mark.parametrize(("intent", "kontext", "mask", "expected"), CASES)
def test_auto_picks_the_documented_mode(
    requested: int, intent: int, kontext: bool, mask: bool, expected: EditMode
) -> None:
    choice = choose_edit_mode(requested, intent, has_mask=mask, kontext_available=kontext)
    assert choice.mode is expected


@pytest.mark.parametrize(("intent", "kontext", "mask", "expected"), CASES)
def test_only_a_local_edit_without_kontext_is_flagged_as_a_fallback(
    intent: int, kontext: bool, mask: bool, expected: EditMode
) -> None:
    choice = choose_edit_mode(pb.EDIT_MODE_AUTO, intent, has_mask=mask, kontext_available=kontext)
    local = TABLE[intent][1] is KON  # type: ignore[index]
    assert choice.kontext_unavailable is (local and not kontext)


@pytest.mark.parametrize(
    ("requested", "expected"),
    [(pb.EDIT_MODE_IMG2IMG, IMG), (pb.EDIT_MODE_KONTEXT, KON), (pb.EDIT_MODE_INPAINT, INP)],
)
@pytest.mark.parametrize("kontext", [True, False])
def test_an_explicit_mode_is_honoured_whatever_the_intent_and_the_model(
    requested: int, expected: EditMode, kontext: bool
) -> None:
    for intent in TABLE:
        choice = choose_edit_mode(requested, intent, has_mask=False, kontext_available=kontext)
        assert choice == EditChoice(expected)


@pytest.mark.parametrize("intent", list(TABLE))
@pytest.mark.parametrize("mask", [True, False])
def test_a_controlnet_keeps_auto_off_kontext_without_a_fallback_warning(
    intent: int, mask: bool
) -> None:
    choice = choose_edit_mode(
        pb.EDIT_MODE_AUTO, intent, has_mask=mask, kontext_available=True, has_controlnet=True
    )
    assert choice == EditChoice(INP if mask else IMG)


def test_each_mode_renders_with_its_shipped_workflow() -> None:
    assert [EditChoice(mode).workflow for mode in (IMG, KON, INP)] == [
        "flux-img2img",
        "flux-kontext-edit",
        "flux-inpaint",
    ]


def test_a_refusal_is_trusted_for_the_recheck_period_then_kontext_is_tried_again() -> None:
    now = [100.0]
    availability = KontextAvailability(recheck_s=60.0, clock=lambda: now[0])
    assert availability.available()
    availability.mark_missing()
    now[0] = 159.0
    assert not availability.available()
    now[0] = 160.0
    assert availability.available()
