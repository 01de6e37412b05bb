"""The committed generated code, and the descriptor set with the comments that reflection
serves, must be exactly what protoc generates from the .proto files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from services.common.reflection import DESCRIPTOR_SET

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
# Imported protos (google.longrunning) that no Python is generated from.
IMPORTS_ONLY = ROOT / "third_party" / "googleapis"


def test_generated_code_matches_protos(tmp_path: Path) -> None:
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    assert sources, "no .proto files found"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTOS}",
            f"-I{IMPORTS_ONLY}",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            "--include_source_info",
            f"--descriptor_set_out={tmp_path / 'imagegen' / DESCRIPTOR_SET}",
            *sources,
        ],
        check=True,
        cwd=PROTOS,
    )
    generated = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert tmp_path / "imagegen" / DESCRIPTOR_SET in generated
    stale = [
        str(p.relative_to(tmp_path))
        for p in generated
        if (PROTOS / p.relative_to(tmp_path)).read_bytes() != p.read_bytes()
    ]
    assert not stale, f"stale generated code, run `make protos`: {stale}"


def test_every_proto_has_generated_modules() -> None:
    for proto in PROTOS.rglob("*.proto"):
        stem = proto.with_suffix("")
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            assert Path(f"{stem}{suffix}").is_file(), f"{stem}{suffix} missing"
