"""Which prompts an earlier life of this render instance left behind."""

from __future__ import annotations

from services.render.instance import RenderInstance


def test_only_an_earlier_life_of_the_same_instance_is_recognised() -> None:
    now = RenderInstance("render-0:50054")
    before = RenderInstance("render-0:50054")
    peer = RenderInstance("render-0:50055")
    assert now.is_earlier_life(before.tags())
    assert not now.is_earlier_life(now.tags())
    assert not now.is_earlier_life(peer.tags())
    assert not now.is_earlier_life({"request_id": "r1"})  # a prompt queued before tagging


def test_the_name_is_host_and_port_unless_configured() -> None:
    assert RenderInstance.for_port("render-a", 50054).name == "render-a"
    assert RenderInstance.for_port("", 50054).name.endswith(":50054")
    random_port = RenderInstance.for_port("", 0)
    assert ":pid" in random_port.name  # two test servers on one host never collide
    assert random_port.start_id != RenderInstance.for_port("", 0).start_id
