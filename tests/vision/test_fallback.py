"""The analysis measured from the image when the model cannot give one."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from services.common.images import validate_image
from services.vision.analysis import AnalysisSource
from services.vision.fallback import dominant_colors, fallback_analysis, measure, name_color

FIXTURES = Path(__file__).parents[1] / "fixtures" / "images"


def _halves(left: tuple[int, int, int], right: tuple[int, int, int]) -> Image.Image:
    image = Image.new("RGB", (200, 100), left)
    image.paste(right, (100, 0, 200, 100))
    return image


def test_name_color_picks_the_nearest_named_colour() -> None:
    assert name_color((250, 5, 5)) == "red"
    assert name_color((10, 10, 10)) == "black"
    assert name_color((35, 75, 210)) == "blue"


def test_dominant_colors_are_the_image_colours_with_their_shares() -> None:
    colours = dict(dominant_colors(_halves((220, 25, 30), (40, 80, 200))))
    assert set(colours) == {"red", "blue"}
    assert abs(colours["red"] - 0.5) < 0.02


def test_a_dark_photo_of_coffee_is_measured_brown_and_dim() -> None:
    measured = measure(Image.open(FIXTURES / "coffee.jpg").convert("RGB"))
    names = [name for name, _ in measured.colors]
    assert names[0] == "brown"
    assert measured.brightness < 0.5
    assert measured.warmth > 0


def test_fallback_analysis_reports_what_it_cannot_measure() -> None:
    analysis = fallback_analysis(
        measurements=measure(_halves((220, 25, 30), (40, 80, 200))),
        width=200,
        height=100,
        image_sha256="ab" * 32,
        exif={},
        reason="Ollama is down",
    )
    assert analysis.source is AnalysisSource.METADATA_FALLBACK
    assert set(analysis.colors) == {"red", "blue"}
    assert analysis.subjects == () and analysis.materials == ()
    # Without camera data nothing tells a photograph from a painting: no style either.
    assert analysis.missing_fields == ("subjects", "materials", "style")
    assert "landscape" in analysis.composition
    assert any("Ollama is down" in w for w in analysis.warnings)


def test_fallback_analysis_uses_the_camera_exif_fields() -> None:
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0110] = "EOS R5"  # Model
    buffer = io.BytesIO()
    _halves((200, 200, 200), (20, 20, 20)).save(buffer, format="JPEG", exif=exif)
    image = validate_image(buffer.getvalue(), field="image.data", max_bytes=10**6, max_side=4096)
    analysis = fallback_analysis(
        measurements=measure(image.open()),
        width=image.width,
        height=image.height,
        image_sha256=image.sha256,
        exif=image.exif(),
        reason="test",
    )
    assert analysis.style == "photograph"
    assert "Canon EOS R5" in analysis.description
    assert analysis.missing_fields == ("subjects", "materials")
