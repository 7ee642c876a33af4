"""``make readme-blocks`` (issue 28): the README's verbatim blocks are found by their markers, their
content is replaced by the commands' output and a stamp, and a marker it does not know is one sentence
naming the line, before any command runs. The commands here are a fake runner: no stack, no make."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.core.errors import UserError
from orchestration.commands import readme_blocks
from orchestration.commands.readme_blocks import CommandResult, find_blocks, regenerate

README = """# title

<!-- verbatim: make run YEAR=2031; make run -->
```text
old output
```
<!-- /verbatim -->

between

<!-- verbatim: make months -->
<!-- /verbatim -->
end
"""


def fake_runner(ran: list[str]):
    def run(command: str, cwd: Path) -> CommandResult:
        ran.append(command)
        return CommandResult(command, f"\x1b[1moutput of {command}\x1b[0m  \n", 0, 1.25)

    return run


@pytest.fixture
def readme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(readme_blocks, "current_commit", lambda cwd: "abc1234")
    path = tmp_path / "README.md"
    path.write_text(README, encoding="utf-8")
    return path


@pytest.mark.unit
def test_the_markers_are_found_with_their_commands_in_order() -> None:
    blocks = find_blocks(README.split("\n"))
    assert [(b.open_line, b.close_line, b.commands) for b in blocks] == [
        (2, 6, ("make run YEAR=2031", "make run")),
        (10, 11, ("make months",)),
    ]


@pytest.mark.unit
def test_each_block_becomes_its_commands_output_and_a_stamp_and_the_rest_is_kept(readme: Path) -> None:
    ran: list[str] = []
    regenerate(readme, lambda: "2 processed period(s)", fake_runner(ran))
    assert ran == ["make run YEAR=2031", "make run", "make months"]
    text = readme.read_text(encoding="utf-8")
    assert "old output" not in text
    assert text.startswith("# title\n\n<!-- verbatim: make run YEAR=2031; make run -->\n```text\n")
    assert "$ make run YEAR=2031\noutput of make run YEAR=2031\n$ make run\noutput of make run\n```\n" in text
    assert "\nbetween\n" in text and text.endswith("<!-- /verbatim -->\nend\n")
    stamps = [line for line in text.split("\n") if line.startswith("<sub>")]
    assert len(stamps) == 2
    assert "at commit abc1234" in stamps[0] and "cache state before: 2 processed period(s)" in stamps[0]
    assert "load average (1, 5, 15 min)" in stamps[0] and "`make run` 1.2 s (exit 0)" in stamps[0]


@pytest.mark.unit
def test_a_second_regeneration_replaces_the_first_one_instead_of_adding_to_it(readme: Path) -> None:
    regenerate(readme, lambda: "cold", fake_runner([]))
    first = readme.read_text(encoding="utf-8")
    regenerate(readme, lambda: "cold", fake_runner([]))
    assert readme.read_text(encoding="utf-8").count("<sub>") == first.count("<sub>") == 2


@pytest.mark.unit
@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("<!-- verbatim: make deploy -->", "line 3: unknown verbatim command `make deploy`"),
        ("<!-- verbatim: rm -rf / -->", "line 3: unknown verbatim command `rm -rf /`"),
        ("<!-- verbatim make run -->", "line 3: unknown marker"),
    ],
)
def test_an_unknown_marker_is_one_sentence_naming_its_line_and_nothing_runs(
    readme: Path, marker: str, message: str
) -> None:
    readme.write_text(
        README.replace("<!-- verbatim: make run YEAR=2031; make run -->", marker), encoding="utf-8"
    )
    ran: list[str] = []
    with pytest.raises(UserError, match=message):
        regenerate(readme, lambda: "cold", fake_runner(ran))
    assert ran == []


@pytest.mark.unit
def test_a_block_without_its_end_marker_is_an_error() -> None:
    with pytest.raises(UserError, match="line 1: the verbatim block has no <!-- /verbatim --> line"):
        find_blocks(["<!-- verbatim: make months -->", "text"])


@pytest.mark.unit
def test_a_command_runs_as_a_top_level_command_not_under_the_make_that_started_the_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAKELEVEL", "1")
    monkeypatch.setenv("MAKEFLAGS", "--no-print-directory")
    result = readme_blocks.run_command("sh -c 'echo ${MAKELEVEL:-top} ${MAKEFLAGS:-none}; exit 3'", tmp_path)
    assert (result.output, result.exit_code) == ("top none\n", 3)
