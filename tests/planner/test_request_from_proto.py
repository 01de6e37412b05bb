"""The planner's translation of a request refuses enum numbers the contract lacks."""

from __future__ import annotations

import pytest

from imagegen.common.v1 import common_pb2
from imagegen.planner.v1 import planner_pb2
from services.common.errors import InvalidArgumentError
from services.planner.plans import Mode
from services.planner.service import request_from_proto


def test_an_unknown_mode_number_is_refused_naming_the_field() -> None:
    request = planner_pb2.PlanPromptRequest(instruction="a red fox", mode=99)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError) as refused:
        request_from_proto(request)
    assert [v.field for v in refused.value.violations] == ["mode"]


def test_a_known_mode_passes() -> None:
    request = planner_pb2.PlanPromptRequest(
        instruction="a red fox", mode=common_pb2.GENERATION_MODE_TEXT_TO_IMAGE
    )
    assert request_from_proto(request).mode is Mode.TEXT_TO_IMAGE


def test_overrides_arrive_as_the_decimals_the_caller_wrote() -> None:
    request = planner_pb2.PlanPromptRequest(
        instruction="x", overrides=common_pb2.SamplerSettings(denoise=0.85, guidance=2.2)
    )
    overrides = request_from_proto(request).overrides
    assert (overrides.denoise, overrides.guidance, overrides.steps) == (0.85, 2.2, None)
