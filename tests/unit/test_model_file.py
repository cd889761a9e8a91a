"""The scoring model file: the default is valid; errors name the file, the line and the reason."""

from __future__ import annotations

import pytest

from leadstream.cli import main
from leadstream.config.loader import ModelFileError, default_model_text, load_model, parse_model


def test_default_model_encodes_the_domain_table():
    model = load_model()
    rules = {r.name: r for r in model.engagement_rules}
    assert rules["demo_request"].points == 65
    assert rules["trial_signup"].points == 50
    assert rules["pricing_page_repeat"].frequency is not None
    assert rules["careers_page"].points < 0
    assert model.domain_lists["competitor"].disqualify
    assert {s.name for s in model.nurture_signals} >= {"blog_read", "newsletter_signup"}


def _broken(old: str, new: str) -> str:
    text = default_model_text()
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("points: 65", "points: sixty-five", "engagement_rules.0.points"),
        ("family: product", "family: produce", "family 'produce' is not declared"),
        ("engagement_below: 25", "engagement_below: 90", "must be below the engagement threshold"),
        (
            'path: ["/pricing*", "/plans*"]',
            'url_path: ["/pricing*"]',
            "cannot match on ['url_path']",
        ),
        ("between: [50, 5000]", "between: [5000, 50]", "is above high"),
    ],
)
def test_errors_name_file_line_and_reason(old, new, expected):
    text = _broken(old, new)
    with pytest.raises(ModelFileError) as info:
        parse_model(text, "model.yaml")
    problem = next(p for p in info.value.problems if expected in p)
    file, line, _ = problem.split(":", 2)
    assert file == "model.yaml"
    bad_line = next(i for i, text_line in enumerate(text.splitlines(), 1) if new in text_line)
    # The line named is the bad value's, or the start of the item or section that holds it.
    assert int(line) <= bad_line <= int(line) + 8


def test_yaml_syntax_error_has_a_line():
    with pytest.raises(ModelFileError, match=r"^m.yaml:4: not valid YAML"):
        parse_model("version: x\nthresholds:\n  fit: [1, 2\n  engagement: 3\n", "m.yaml")


def test_validate_command(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(default_model_text())
    assert main(["validate", str(good)]) == 0
    assert "valid (version" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(_broken("points: 30", "points: -5000"))
    assert main(["validate", str(bad)]) == 2
    assert f"{bad}:" in capsys.readouterr().err
