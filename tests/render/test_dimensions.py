"""Render sizes: multiples of 16, the megapixel cap, text-to-image bounds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.render.dimensions import (
    MEGAPIXEL,
    Size,
    SizePlan,
    Txt2ImgBounds,
    render_size_for,
    snap_to_multiple,
    source_sizes,
    txt2img_size,
    upscale_sizes,
)


def test_snap_to_multiple_rounds_to_the_nearest_16() -> None:
    assert [snap_to_multiple(n) for n in (1000, 750, 600, 1024, 1)] == [1008, 752, 608, 1024, 16]


def test_a_source_under_the_cap_renders_at_its_own_size_snapped() -> None:
    assert render_size_for(Size(1000, 750), cap_mp=2.0) == Size(1008, 752)


def test_a_source_above_the_cap_is_scaled_down_with_its_aspect() -> None:
    size = render_size_for(Size(3000, 2000), cap_mp=2.0)
    assert size.pixels <= 2 * MEGAPIXEL
    assert size.width % 16 == 0 and size.height % 16 == 0
    assert abs(size.width / size.height - 1.5) < 0.02
    assert size == Size(1728, 1152)


@given(
    st.integers(min_value=1, max_value=4096),
    st.integers(min_value=1, max_value=4096),
    st.sampled_from([0.5, 1.0, 2.0]),
)
def test_render_sizes_are_flux_friendly_and_within_the_cap(w: int, h: int, cap: float) -> None:
    size = render_size_for(Size(w, h), cap_mp=cap)
    assert size.width % 16 == 0 and size.height % 16 == 0
    assert size.pixels <= cap * MEGAPIXEL
    # Never scaled up beyond the snap.
    assert size.width <= max(16, w + 8) and size.height <= max(16, h + 8)


def test_txt2img_snaps_the_requested_size() -> None:
    assert txt2img_size(1000, 600, Txt2ImgBounds()) == Size(1008, 608)


def test_txt2img_defaults_to_1024_square() -> None:
    assert txt2img_size(0, 0, Txt2ImgBounds()) == Size(1024, 1024)


def test_txt2img_clamps_each_side_to_the_bounds() -> None:
    assert txt2img_size(100, 5000, Txt2ImgBounds(cap_mp=16.0)) == Size(256, 2048)


def test_txt2img_large_requests_are_scaled_under_the_cap() -> None:
    size = txt2img_size(2048, 2048, Txt2ImgBounds(cap_mp=2.0))
    assert size.pixels <= 2 * MEGAPIXEL and size.width == size.height


def test_upscale_sizes_enlarge_the_source_and_snap_only_the_render() -> None:
    plan = upscale_sizes(Size(300, 200), 2.0, cap_mp=4.0)
    assert (plan.output, plan.render, plan.capped) == (Size(600, 400), Size(608, 400), False)


def test_upscale_sizes_lower_the_factor_to_the_cap() -> None:
    plan = upscale_sizes(Size(1000, 1000), 4.0, cap_mp=4.0)
    assert plan.capped
    assert plan.output == Size(2000, 2000)
    assert plan.render.pixels <= 4 * MEGAPIXEL


@given(
    st.integers(min_value=64, max_value=2048),
    st.integers(min_value=64, max_value=2048),
    st.floats(min_value=1.5, max_value=4.0),
    st.sampled_from([1.0, 4.0, 8.0]),
)
def test_upscale_sizes_stay_within_the_cap_with_the_aspect_kept(
    w: int, h: int, factor: float, cap: float
) -> None:
    plan = upscale_sizes(Size(w, h), factor, cap_mp=cap)
    assert plan.output.pixels <= cap * MEGAPIXEL
    assert plan.render.pixels <= cap * MEGAPIXEL
    assert plan.render.width % 16 == 0 and plan.render.height % 16 == 0
    assert plan.capped == (w * h * factor * factor > cap * MEGAPIXEL)


def test_source_sizes_keep_the_source_and_say_when_the_cap_shrank_the_render() -> None:
    assert source_sizes(Size(1000, 750), cap_mp=2.0) == SizePlan(
        Size(1008, 752), Size(1000, 750), capped=False
    )
    assert source_sizes(Size(3000, 2000), cap_mp=2.0).capped
