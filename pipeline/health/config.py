"""Validated YAML config files: shipped defaults in pipeline/health/data, or a file the operator names."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def load_yaml(model: type[M], default_name: str, path: str | None = None) -> M:
    """Parse and validate; a bad file raises pydantic's ValidationError naming the field."""
    if path:
        text = Path(path).read_text(encoding="utf-8")
    else:
        text = resources.files("pipeline.health").joinpath("data", default_name).read_text(encoding="utf-8")
    return model.model_validate(yaml.safe_load(text))
