"""Placing variants on the least-loaded backend, and backend readiness."""

from __future__ import annotations

from services.render.backends import BackendPool, assign_least_loaded
from services.render.comfyui import ComfyUIBackend, ComfyUIClient
from standins.comfyui.server import run_fake_comfyui
from tests.render.conftest import fake_settings

FLUX = [("CheckpointLoaderSimple", "ckpt_name", "flux1-dev-fp8.safetensors")]


def _backend(url: str) -> ComfyUIBackend:
    return ComfyUIBackend(ComfyUIClient(url, client_id="test"))


def test_equal_backends_alternate() -> None:
    assert assign_least_loaded([0, 0], 4) == [0, 1, 0, 1]


def test_a_busy_backend_gets_work_only_once_the_other_catches_up() -> None:
    assert assign_least_loaded([3, 0], 4) == [1, 1, 1, 0]


def test_one_backend_takes_everything() -> None:
    assert assign_least_loaded([5], 3) == [0, 0, 0]


async def test_reservations_count_as_load_until_released() -> None:
    async with run_fake_comfyui(fake_settings(), port=0) as comfy:
        backend = ComfyUIBackend(ComfyUIClient(comfy.url, client_id="test"))
        pool = BackendPool([backend])
        try:
            pool.reserve([backend, backend])
            (load,), failed = await pool.loads()
            assert (load.load, failed) == (2, {})
            pool.release(backend)
            (load,), _ = await pool.loads()
            assert load.load == 1
        finally:
            await pool.aclose()


async def test_a_backend_with_the_checkpoint_is_ready() -> None:
    async with run_fake_comfyui(fake_settings(), port=0) as comfy:
        pool = BackendPool([_backend(comfy.url)])
        try:
            assert await pool.any_ready(FLUX)
        finally:
            await pool.aclose()


async def test_a_backend_without_the_checkpoint_is_not_ready() -> None:
    async with run_fake_comfyui(fake_settings(checkpoints=["sdxl.safetensors"]), port=0) as comfy:
        pool = BackendPool([_backend(comfy.url)])
        try:
            assert not await pool.any_ready(FLUX)
        finally:
            await pool.aclose()


async def test_one_ready_backend_of_two_is_enough() -> None:
    async with (
        run_fake_comfyui(fake_settings(), port=0) as up,
        run_fake_comfyui(fake_settings(), port=0) as down,
    ):
        await down.stop()
        pool = BackendPool([_backend(down.url), _backend(up.url)])
        try:
            assert await pool.any_ready(FLUX)
            loads, failed = await pool.loads()
            assert [load.backend.name for load in loads] == [up.url]
            assert list(failed) == [down.url]
        finally:
            await pool.aclose()
