"""The README's config reference names every key the config model accepts."""

import re
import typing
from pathlib import Path

from pydantic import BaseModel

from config.loader import _unwrap
from config.model import PlatformConfig

README = Path(__file__).resolve().parents[1] / "README.md"


def _models(model: type[BaseModel], seen: set) -> None:
    seen.add(model)
    for field in model.model_fields.values():
        for annotation in [field.annotation, *typing.get_args(_unwrap(field.annotation))]:
            annotation = _unwrap(annotation)
            if isinstance(annotation, type) and issubclass(annotation, BaseModel) and annotation not in seen:
                _models(annotation, seen)


def test_config_reference_names_every_key():
    reference = README.read_text().split("## Config reference", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"[A-Za-z0-9]+", " ".join(re.findall(r"`([^`]*)`", reference))))
    models: set = set()
    _models(PlatformConfig, models)
    keys = {field.alias for model in models for field in model.model_fields.values()}
    assert keys - documented == set()
