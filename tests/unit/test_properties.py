"""Java .properties parsing and writing, and Kafka's meta.properties."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.properties import (
    MetaProperties,
    PropertiesError,
    format_properties,
    java_date,
    load_properties,
    parse_properties,
)

CLUSTER_ID = "MkU3OEVBNTcwNTJENDM2Qg"
DIRECTORY_ID = "7yq5ZmHaRoiaQjrvUO7E0w"


# -- parsing -----------------------------------------------------------------------------------


def test_the_three_separators_and_surrounding_whitespace() -> None:
    text = "a=1\nb: 2\nc 3\n  d  =  4  \ne\t:\tfive six\n"
    assert parse_properties(text) == {"a": "1", "b": "2", "c": "3", "d": "4", "e": "five six"}


def test_comments_and_blank_lines_are_skipped() -> None:
    text = "# comment\n! also a comment\n   # indented comment\n\n   \nnode.id=1\n"
    assert parse_properties(text) == {"node.id": "1"}


def test_a_key_alone_has_an_empty_value() -> None:
    assert parse_properties("flag\nother=\n") == {"flag": "", "other": ""}


def test_only_the_first_separator_is_consumed() -> None:
    assert parse_properties("a==b\nc = : d\n") == {"a": "=b", "c": ": d"}


def test_backslash_continues_a_line_and_drops_the_next_lines_indent() -> None:
    text = "log.dirs=/a,\\\n        /b,\\\n   /c\nnext=1\n"
    assert parse_properties(text) == {"log.dirs": "/a,/b,/c", "next": "1"}


def test_an_even_number_of_backslashes_does_not_continue() -> None:
    assert parse_properties("path=C:\\\\\nnext=1\n") == {"path": "C:\\", "next": "1"}


def test_a_comment_line_is_never_continued() -> None:
    assert parse_properties("# note \\\nkey=1\n") == {"key": "1"}


def test_a_continued_line_starting_with_hash_is_not_a_comment() -> None:
    assert parse_properties("a=1\\\n#2\n") == {"a": "1#2"}


def test_the_usual_escapes() -> None:
    text = "k\\ ey\\=x\\:y=\\tt\\nn\\rr\\ff\\\\ \\u00e9\\u20AC \\q\n"
    assert parse_properties(text) == {"k ey=x:y": "\tt\nn\rr\ff\\ é€ q"}


def test_surrogate_pair_escapes_make_one_character() -> None:
    assert parse_properties("smile=\\uD83D\\uDE00\n") == {"smile": "\U0001f600"}


def test_trailing_whitespace_is_trimmed_unless_escaped() -> None:
    assert parse_properties("a=1 \t \nb=2\\ \n") == {"a": "1", "b": "2 "}


def test_windows_and_old_mac_line_ends() -> None:
    assert parse_properties("a=1\r\nb=2\rc=3") == {"a": "1", "b": "2", "c": "3"}


def test_the_last_of_equal_keys_wins() -> None:
    assert parse_properties("a=1\na=2\n") == {"a": "2"}


@pytest.mark.parametrize(
    ("text", "line"),
    [("ok=1\nbad=\\u12G4\n", 2), ("ok=1\n\n=value\n", 3), ("a=\\u12", 1), (": x\n", 1)],
)
def test_a_malformed_line_names_the_source_and_line(text: str, line: int) -> None:
    with pytest.raises(PropertiesError) as info:
        parse_properties(text, "node.properties")
    assert info.value.line == line
    assert str(info.value).startswith(f"node.properties, line {line}: ")


def test_the_line_of_a_continued_line_is_where_it_starts() -> None:
    with pytest.raises(PropertiesError) as info:
        parse_properties("a=1\nb=x\\\n  \\uZZZZ\n", "f")
    assert info.value.line == 2


def test_load_properties_reads_a_file_and_names_it_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "node.properties"
    path.write_text("node.id=1\nlog.dirs=/tmp/kraft-combined-logs\n")
    assert load_properties(path) == {"node.id": "1", "log.dirs": "/tmp/kraft-combined-logs"}
    path.write_bytes(b"node.id=1\nname=\xff\n")
    with pytest.raises(PropertiesError) as info:
        load_properties(path)
    assert info.value.line == 2 and str(path) in str(info.value)


def test_load_properties_of_a_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_properties(tmp_path / "nope.properties")


# -- writing -----------------------------------------------------------------------------------


def test_format_properties_writes_javas_layout() -> None:
    date = datetime(2024, 11, 26, 9, 49, 0, tzinfo=UTC)
    text = format_properties({"node.id": "1", "version": "1"}, "", date=date)
    assert text == "#\n#Tue Nov 26 09:49:00 UTC 2024\nnode.id=1\nversion=1\n"


def test_format_properties_escapes_what_java_escapes() -> None:
    text = format_properties({"a key": " lead=x:y#z!w\\ é\n", "k": "tail  "})
    assert text == "a\\ key=\\ lead\\=x\\:y\\#z\\!w\\\\ \\u00E9\\n\nk=tail\\ \\ \n"


def test_format_properties_comment_lines() -> None:
    assert format_properties({}, "line one\nline two") == "#line one\n#line two\n"
    assert format_properties({}) == ""


def test_java_date_is_utc_and_locale_free() -> None:
    assert java_date(datetime(2021, 7, 1, 12, 0, 5, tzinfo=UTC)) == "Thu Jul 01 12:00:05 UTC 2021"


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_text.filter(bool), _text, max_size=6), st.one_of(st.none(), _text))
def test_format_then_parse_round_trips(props: dict[str, str], comment: str | None) -> None:
    assert parse_properties(format_properties(props, comment)) == props


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_any_text_parses_or_raises_properties_error(text: str) -> None:
    try:
        result = parse_properties(text)
    except PropertiesError:
        return
    assert all(isinstance(k, str) and k and isinstance(v, str) for k, v in result.items())


# -- meta.properties ---------------------------------------------------------------------------


def test_meta_properties_is_written_in_kafkas_layout(tmp_path: Path) -> None:
    meta = MetaProperties(cluster_id=CLUSTER_ID, node_id=1, directory_id=DIRECTORY_ID)
    meta.write(tmp_path, now=datetime(2024, 11, 26, 9, 49, tzinfo=UTC))
    assert (tmp_path / "meta.properties").read_text() == (
        "#\n#Tue Nov 26 09:49:00 UTC 2024\n"
        f"node.id=1\ndirectory.id={DIRECTORY_ID}\nversion=1\ncluster.id={CLUSTER_ID}\n"
    )
    assert MetaProperties.read(tmp_path) == meta


def test_meta_properties_of_an_unformatted_directory_is_none(tmp_path: Path) -> None:
    assert MetaProperties.read(tmp_path) is None


def test_meta_properties_written_by_kafka_reads(tmp_path: Path) -> None:
    (tmp_path / "meta.properties").write_text(
        f"#\n#Mon Jan 01 00:00:00 UTC 2024\ncluster.id={CLUSTER_ID}\ndirectory.id="
        f"{DIRECTORY_ID}\nnode.id=3\nversion=1\n"
    )
    assert MetaProperties.read(tmp_path) == MetaProperties(
        cluster_id=CLUSTER_ID, node_id=3, directory_id=DIRECTORY_ID
    )


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("version=1\nnode.id=1\n", "cluster.id is missing"),
        (f"version=1\ncluster.id={CLUSTER_ID}\n", "node.id is missing"),
        (f"cluster.id={CLUSTER_ID}\nnode.id=1\n", "version is missing"),
        (f"version=0\ncluster.id={CLUSTER_ID}\nnode.id=1\n", "version 0 is not supported"),
        (f"version=1\ncluster.id={CLUSTER_ID}\nnode.id=one\n", "not an integer"),
        (f"version=1\ncluster.id={CLUSTER_ID}\nnode.id=-2\n", "non-negative"),
        (f"version=1\ncluster.id={CLUSTER_ID}\nnode.id=1\ndirectory.id=x\n", "directory.id"),
    ],
)
def test_a_bad_meta_properties_names_the_file_and_the_problem(
    tmp_path: Path, body: str, words: str
) -> None:
    (tmp_path / "meta.properties").write_text(body)
    with pytest.raises(PropertiesError) as info:
        MetaProperties.read(tmp_path)
    assert str(tmp_path / "meta.properties") in str(info.value)
    assert words in str(info.value)


def test_meta_properties_checks_itself() -> None:
    with pytest.raises(ValueError):
        MetaProperties(cluster_id="", node_id=1)
    with pytest.raises(ValueError):
        MetaProperties(cluster_id=CLUSTER_ID, node_id=-1)
    with pytest.raises(ValueError):
        MetaProperties(cluster_id=CLUSTER_ID, node_id=1, version=0)
