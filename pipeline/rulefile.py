"""Versioned rules files business people edit without code (stage gates, account grading,
rebates): validated, shipped with a default, overridden from the model directory, and
refused when a changed text keeps its version (every row they judge names that version)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Generic, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True)
class Loaded(Generic[R]):
    """The rules in force and their text's digest."""

    rules: R
    digest: str


def parse(model: type[R], text: str) -> Loaded[R]:
    """Validate a rules file; a bad one raises ValueError naming what is wrong."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"not YAML: {exc}") from None
    try:
        rules = model.model_validate(doc)
    except ValidationError as exc:
        raise ValueError(str(exc)) from None
    return Loaded(rules, hashlib.sha256(text.encode()).hexdigest())


def shipped(model: type[R], name: str, package: str = "pipeline.deals") -> Loaded[R]:
    return parse(model, resources.files(package).joinpath("data", name).read_text(encoding="utf-8"))


def load(model: type[R], name: str, model_dir: Path, package: str = "pipeline.deals") -> Loaded[R]:
    """The edited file in the model directory, else the one shipped in ``package``."""
    edited = model_dir / name
    return parse(model, edited.read_text(encoding="utf-8")) if edited.exists() else shipped(model, name, package)


def successor(current: Loaded[R], text: str) -> Loaded[R]:
    """A new file for a running worker: validated, and refused if it changed without a new version."""
    new = parse(type(current.rules), text)
    old_version = getattr(current.rules, "version", "")
    if new.digest != current.digest and getattr(new.rules, "version", "") == old_version:
        raise ValueError(f"the file changed but its version is still {old_version!r}: give it a new version")
    return new


@dataclass(frozen=True)
class Kind(Generic[R]):
    """One kind of rules file: its model, file name and the package that ships the default."""

    model: type[R]
    name: str
    package: str

    def parse(self, text: str) -> Loaded[R]:
        return parse(self.model, text)

    def shipped(self) -> Loaded[R]:
        return shipped(self.model, self.name, self.package)

    def load(self, model_dir: Path) -> Loaded[R]:
        return load(self.model, self.name, model_dir, self.package)

    def successor(self, current: Loaded[R], text: str) -> Loaded[R]:
        return successor(current, text)


class Watched(Generic[R]):
    """A rules file a running worker follows: ``check`` (on a timer) takes an edited file once
    it is valid and versioned; a broken one is refused and the rules in force stay."""

    def __init__(self, kind: Kind[R], model_dir: Path) -> None:
        self.kind = kind
        self.path = model_dir / kind.name
        self.loaded = kind.load(model_dir)
        self.seen = self.path.stat().st_mtime if self.path.exists() else None

    @property
    def rules(self) -> R:
        return self.loaded.rules

    def check(self) -> tuple[bool, str | None]:
        """(whether new rules are in force, why an edited file was refused)."""
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return False, None
        if mtime == self.seen:
            return False, None
        self.seen = mtime
        try:
            self.loaded = self.kind.successor(self.loaded, self.path.read_text(encoding="utf-8"))
        except (ValueError, OSError, UnicodeDecodeError) as exc:
            return False, str(exc)
        return True, None
