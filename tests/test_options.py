"""Options declared once as dataclass fields: the flag, the environment variable, the checks and the info entry
all come from the field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from models.config import GeneratorSettings
from models.generators import GENERATOR_NAMES
from models.marionette.config import CONFIGS
from models.pipeline import PipelineConfig
from options import OptionParser, info, new_parser, option, options_of, section
from server.config import ENV_PREFIX, ServerConfig, parse_config


@dataclass(frozen=True, kw_only=True)
class _WithNewOption(GeneratorSettings):
    """A generator option added the way a new one is: one field."""

    mesh_detail: Literal["low", "high"] = option("low", "detail of the face mesh")


def _parser(cls: type) -> OptionParser:
    return OptionParser(new_parser("test", None), cls, ENV_PREFIX)


def test_one_field_gives_flag_environment_check_and_info(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    assert _parser(_WithNewOption).parse(["--mesh-detail", "high"]).mesh_detail == "high"
    monkeypatch.setenv("MARIONETTE_MESH_DETAIL", "high")
    assert _parser(_WithNewOption).parse([]).mesh_detail == "high"
    monkeypatch.setenv("MARIONETTE_MESH_DETAIL", "max")
    with pytest.raises(SystemExit):
        _parser(_WithNewOption).parse([])
    assert "MARIONETTE_MESH_DETAIL='max': choose from low, high" in capsys.readouterr().err
    with pytest.raises(ValueError, match="choose from low, high"):
        _WithNewOption(mesh_detail="max")
    assert info(_WithNewOption(mesh_detail="high"))["mesh_detail"] == "high"


def test_choices_come_from_the_registries() -> None:
    by_name = {opt.name: opt for opt in options_of(PipelineConfig)}
    assert by_name["generator"].choices == GENERATOR_NAMES
    assert by_name["network"].choices == tuple(CONFIGS)


def test_server_config_holds_the_pipeline_options_and_hands_each_stage_its_own() -> None:
    config = parse_config(["--generator", "marionette", "--runtime", "onnx", "--weights", "", "--size", "128"])
    assert {opt.name for opt in options_of(PipelineConfig)} < {opt.name for opt in options_of(ServerConfig)}
    assert config.weights is None and config.output_size == 128
    assert section(config, GeneratorSettings) == GeneratorSettings(runtime="onnx", output_size=128, device="auto")


def test_rules_and_bounds_name_the_flag(capsys) -> None:
    for argv, words in ((["--transformer", "pca"], "--transformer: pca needs --expression-model"),
                        (["--max-batch", "0"], "--max-batch: 0: must be >= 1"),
                        (["--output-size", "2048"], "--output-size: 2048: must be between 64 and 1024 and even"),
                        (["--weights", "missing.pt"], "--weights: no such file: missing.pt")):
        with pytest.raises(SystemExit):
            parse_config(argv)
        assert words in capsys.readouterr().err


def test_info_shows_every_option_but_private_ones_and_paths_by_name(tmp_path: Path) -> None:
    weights = tmp_path / "generator.pt"
    weights.write_bytes(b"")
    shown = info(ServerConfig(ice_servers=("turn:user:secret@host:3478",), weights=weights,
                              turn_urls=("turn:host:3478",), turn_secret="shared-with-coturn", sfu_secret="s3cret"))
    assert "ice_servers" not in shown and shown["weights"] == "generator.pt"
    assert "turn_secret" not in shown and shown["turn_urls"] == ["turn:host:3478"]
    private = {"ice_servers", "turn_secret", "sfu_url", "sfu_secret", "room_key_secret"}  # credentials, Janus's address
    assert not private & set(shown) and "s3cret" not in str(shown)
    assert set(shown) == {opt.name for opt in options_of(ServerConfig)} - private


def test_every_landmark_choice_has_a_source() -> None:
    from models.config import LANDMARK_SOURCES
    from models.landmark_sources import SOURCES

    assert set(SOURCES) == set(LANDMARK_SOURCES)
