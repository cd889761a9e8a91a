"""Loading the scoring model from YAML, with errors that name the file, the line and the reason."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from leadstream.config.model import ScoringModel
from leadstream.errors import ModelFileError

__all__ = ["DEFAULT_MODEL", "ModelFileError", "default_model_text", "load_model", "parse_model"]

DEFAULT_MODEL = "default_model.yaml"


def default_model_text() -> str:
    return resources.files("leadstream.config").joinpath(DEFAULT_MODEL).read_text(encoding="utf-8")


def load_model(path: str | Path | None = None) -> ScoringModel:
    """Load and validate a scoring model; ``None`` loads the default model shipped in the package."""
    if path is None:
        return parse_model(default_model_text(), f"<package>/config/{DEFAULT_MODEL}")
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelFileError([f"{file}: cannot read: {exc.strerror}"]) from exc
    return parse_model(text, str(file))


def parse_model(text: str, source: str) -> ScoringModel:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{mark.line + 1}" if mark is not None else "?"
        raise ModelFileError([f"{source}:{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from exc
    if not isinstance(data, dict):
        raise ModelFileError([f"{source}:1: expected a mapping at the top level"])
    try:
        families = data.get("families")
        context = {"families": set(families)} if isinstance(families, dict) else None
        return ScoringModel.model_validate(data, context=context)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = ".".join(str(part) for part in error["loc"]) or "(top level)"
            line = _line_of(root, error["loc"])
            problems.append(f"{source}:{line}: {location}: {error['msg']}")
        raise ModelFileError(problems) from exc


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int:
    """The 1-based line of the deepest YAML node that ``loc`` reaches."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    node, line = value, key.start_mark.line + 1
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
