"""README.md's map of the code is generated from the package (scripts/readme_layout.py) and
cannot drift: the section equals what the package says now, and each wing names its modules."""

import re

from paths import ROOT
from scripts import readme_layout


def test_the_layout_section_is_what_the_package_says():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_layout.replaced(readme) == readme, (
        "README.md's Layout section differs from the package: run `.venv/bin/python scripts/readme_layout.py --write`")


def test_every_wing_names_each_of_its_modules_in_its_docstring():
    for wing in readme_layout.wings():
        doc = readme_layout.docstring(wing / "__init__.py")
        unnamed = [m for m in readme_layout.modules(wing) if not re.search(rf"\b{m}\b", doc)]
        assert not unnamed, f"{wing.name}/__init__.py does not say what {unnamed} do"


def test_the_check_sees_a_section_that_drifted():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    drifted = readme.replace("    conditions.py ", "    pairings.py ", 1).replace(" conditions.py", " pairings.py", 1)
    assert drifted != readme and readme_layout.replaced(drifted) != drifted


def test_readme_and_docs_figures_are_what_the_records_say():
    """The figures a user reads (README's excerpt, docs/baselines.md's table) match baselines/, which a
    strict `make bench` proves the current code reproduces (scripts/readme_figures.py)."""
    from scripts import readme_figures

    assert readme_figures.check() == []


def test_the_figures_check_sees_a_drifted_acceptance_and_speedup():
    from scripts import readme_figures

    portable, timing = readme_figures.records("portable"), readme_figures.records("timing")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("fixture-aligned-draft_model-k3 "))
    accept = f"{portable['fixture-aligned-draft_model-k3']['metrics']['acceptance_rate']:.3f}"
    speedup = row.split()[4]
    assert readme_figures.excerpt_problems(readme, portable, timing) == []
    moved = readme.replace(row, row.replace(accept, "0.999"))
    assert "README shows acceptance ['0.999']" in " ".join(readme_figures.excerpt_problems(moved, portable, timing))
    slower = readme.replace(row, row.replace(speedup, f"{float(speedup) * 1.3:.3f}"))
    assert "more than 15% apart" in " ".join(readme_figures.excerpt_problems(slower, portable, timing))
