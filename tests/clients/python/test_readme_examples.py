"""The README shows the examples the suites run, verbatim: examples/ is the source of truth,
so a README edit that is not made in examples/ too (or the reverse) fails here."""

from __future__ import annotations

import pytest

from conftest import ROOT

README = ROOT / "README.md"
EXAMPLES = ["examples/openai_sdk.py", "examples/fetch_stream.ts"]


@pytest.mark.parametrize("example", EXAMPLES)
def test_readme_contains_example_verbatim(example: str) -> None:
    assert README.is_file(), "README.md is missing"
    code = (ROOT / example).read_text(encoding="utf-8").strip("\n")
    readme = README.read_text(encoding="utf-8")
    present = code in readme
    assert present, (
        f"README.md must contain {example} verbatim (in a code block): "
        f"paste the file's content into the README, or change both together"
    )
