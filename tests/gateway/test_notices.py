"""Warning events drawn from the stages' answers."""

from __future__ import annotations

from gateway.notices import analysis_warnings, plan_warnings
from imagegen.common.v1 import common_pb2


def test_fallback_analysis_warns_with_the_reason() -> None:
    analysis = common_pb2.ImageAnalysis(
        source=common_pb2.ANALYSIS_SOURCE_METADATA_FALLBACK, warnings=["llava timed out"]
    )
    (notice,) = analysis_warnings(analysis)
    assert notice.code == "ANALYSIS_FALLBACK" and "llava timed out" in notice.message


def test_incomplete_analysis_names_the_empty_fields() -> None:
    analysis = common_pb2.ImageAnalysis(
        source=common_pb2.ANALYSIS_SOURCE_MODEL, missing_fields=["lighting", "style"]
    )
    (notice,) = analysis_warnings(analysis)
    assert notice.code == "ANALYSIS_INCOMPLETE"
    assert (
        notice.message
        == "the vision model left lighting, style empty, even when asked again for them"
    )


def test_a_fallback_analysis_says_it_could_not_see_the_fields_rather_than_blaming_the_model() -> (
    None
):
    analysis = common_pb2.ImageAnalysis(
        source=common_pb2.ANALYSIS_SOURCE_METADATA_FALLBACK,
        missing_fields=["subjects", "materials"],
        warnings=["cannot connect"],
    )
    fallback, incomplete = analysis_warnings(analysis)
    assert fallback.code == "ANALYSIS_FALLBACK"
    assert incomplete.code == "ANALYSIS_INCOMPLETE"
    assert incomplete.message.startswith("the metadata fallback cannot see subjects, materials")
    assert "vision model" not in incomplete.message


def test_complete_model_analysis_gives_no_warning() -> None:
    assert (
        analysis_warnings(common_pb2.ImageAnalysis(source=common_pb2.ANALYSIS_SOURCE_MODEL)) == []
    )


def test_rules_plan_warns_once_as_a_fallback() -> None:
    plan = common_pb2.PromptPlan(source=common_pb2.PLAN_SOURCE_RULES, warnings=["a", "b"])
    assert [n.code for n in plan_warnings(plan)] == ["PLAN_FALLBACK"]


def test_each_adjustment_of_a_model_plan_is_a_warning() -> None:
    plan = common_pb2.PromptPlan(
        source=common_pb2.PLAN_SOURCE_MODEL, warnings=["denoise clamped", "prompt truncated"]
    )
    assert [n.message for n in plan_warnings(plan)] == ["denoise clamped", "prompt truncated"]


def test_plan_fallback_names_keyword_rules_once() -> None:
    from_planner = common_pb2.PromptPlan(
        source=common_pb2.PLAN_SOURCE_RULES,
        warnings=[
            "planned by keyword rules: the text model gave no plan (timeout)",
            "denoise 0.85",
        ],
    )
    silent = common_pb2.PromptPlan(source=common_pb2.PLAN_SOURCE_RULES)
    for plan in (from_planner, silent):
        (notice,) = plan_warnings(plan)
        assert notice.message.count("planned by keyword rules") == 1, notice.message
    (notice,) = plan_warnings(silent)
    assert (
        notice.message
        == "the prompt was planned by keyword rules: the planner model did not answer"
    )


def test_a_fallback_analysis_with_empty_fields_does_not_blame_the_model() -> None:
    analysis = common_pb2.ImageAnalysis(
        source=common_pb2.ANALYSIS_SOURCE_METADATA_FALLBACK,
        warnings=["analysis measured from the image itself, not by the vision model: down"],
        missing_fields=["subjects"],
    )
    fallback, incomplete = analysis_warnings(analysis)
    assert fallback.message.count("not by the vision model") == 1
    assert incomplete.code == "ANALYSIS_INCOMPLETE"
    assert not incomplete.message.startswith("the vision model")
    assert "subjects" in incomplete.message
