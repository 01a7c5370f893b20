"""Rewriting image_observed in a manifest: minimal, verified, atomic (docs/observe.md)."""

from __future__ import annotations

import contextlib
import difflib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from platformctl.declared.edit import (
    EditConflict,
    EditProblem,
    Observed,
    plan_edit,
    write_edit,
)

CORPUS = Path(__file__).parent / "observe_manifests"
NEW = Observed(
    repository="registry.example:5000/org/web",
    tag="1.1",
    digest="sha256:" + "11" * 32,
    at=datetime(2026, 11, 27, 10, 30, tzinfo=UTC),
)
VALUE_KEYS = ("image_observed", "image:", "digest:", "observed_at")


def put(root: Path, text: str | bytes, name: str = "m") -> Path:
    path = root / "modules" / name / "module.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(True), after.splitlines(True), n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def runtime(text: str) -> dict[str, object]:
    value = yaml.safe_load(text)["spec"]["runtime"]
    assert isinstance(value, dict)
    return value


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.yaml")))
def test_only_the_value_lines_change_and_the_rest_is_byte_identical(
    tmp_path: Path, name: str
) -> None:
    path = put(tmp_path, (CORPUS / name).read_bytes())
    before = path.read_bytes().decode()
    edit = plan_edit(tmp_path, path, NEW)
    after = edit.after_text
    assert path.read_bytes().decode() == before  # planning writes nothing
    changes = changed_lines(before, after)
    assert changes, "the value must change"
    assert all(any(k in line for k in VALUE_KEYS) for line in changes), changes
    # Every other line is the same, in the same order, with the same line endings.
    others = [line for line in before.splitlines(True) if not any(k in line for k in VALUE_KEYS)]
    rest = [line for line in after.splitlines(True) if not any(k in line for k in VALUE_KEYS)]
    assert rest == others
    old, new = yaml.safe_load(before), yaml.safe_load(after)
    old_value, new_value = (
        old["spec"]["runtime"].pop("image_observed"),
        new["spec"]["runtime"].pop("image_observed"),
    )
    assert new == old  # nothing else in the document changed
    assert type(new_value) is type(old_value)  # a string stays a string, a mapping a mapping
    if isinstance(new_value, str):
        assert new_value == NEW.reference
    else:
        assert new_value["image"] in (NEW.name, NEW.reference)
        assert new_value.get("digest", NEW.digest) == NEW.digest
        assert new_value["observed_at"] in (date(2026, 11, 27), "2026-11-27T10:30:00Z")
        assert {
            k: v for k, v in new_value.items() if k not in ("image", "digest", "observed_at")
        } == {k: v for k, v in old_value.items() if k not in ("image", "digest", "observed_at")}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("image_observed: a/b:1@sha256:" + "0" * 64, f"image_observed: {NEW.reference}"),
        ("image_observed: 'a/b:1@sha256:" + "0" * 64 + "'", f"image_observed: '{NEW.reference}'"),
        ('image_observed: "a/b:1@sha256:' + "0" * 64 + '"', f'image_observed: "{NEW.reference}"'),
    ],
)
def test_the_string_form_keeps_its_quoting_style(tmp_path: Path, line: str, expected: str) -> None:
    path = put(tmp_path, f"spec:\n  runtime:\n    {line}  # why\n")
    after = plan_edit(tmp_path, path, NEW).after_text
    assert after == f"spec:\n  runtime:\n    {expected}  # why\n"


def test_observed_at_keeps_its_form_date_or_timestamp_and_its_quotes(tmp_path: Path) -> None:
    base = "spec:\n  runtime:\n    image_observed:\n      image: a/b:1\n      digest: sha256:{}\n"
    cases = {
        "      observed_at: 2026-01-01\n": "      observed_at: 2026-11-27\n",
        "      observed_at: '2026-01-01'\n": "      observed_at: '2026-11-27'\n",
        '      observed_at: "2026-01-01T08:00:00Z"\n': (
            '      observed_at: "2026-11-27T10:30:00Z"\n'
        ),
        "      observed_at: 2026-01-01 08:00:00\n": "      observed_at: 2026-11-27T10:30:00Z\n",
        "      observed_at: last week\n": "      observed_at: 2026-11-27\n",
        "      observed_at:   # unknown\n": "      observed_at: 2026-11-27   # unknown\n",
    }
    for i, (old, new) in enumerate(cases.items()):
        path = put(tmp_path, base.format("0" * 64) + old, f"m{i}")
        after = plan_edit(tmp_path, path, NEW).after_text
        assert after == base.format("11" * 32).replace("a/b:1", NEW.name) + new


def test_missing_digest_and_observed_at_are_added_in_the_mapping_style(tmp_path: Path) -> None:
    block = put(tmp_path, 'spec:\n  runtime:\n    image_observed:\n      image: "a/b:1"\n', "b")
    assert plan_edit(tmp_path, block, NEW).after_text == (
        "spec:\n  runtime:\n    image_observed:\n"
        f'      image: "{NEW.name}"\n      digest: "{NEW.digest}"\n      observed_at: 2026-11-27\n'
    )
    crlf = put(
        tmp_path, "spec:\r\n  runtime:\r\n    image_observed:\r\n      image: a/b:1\r\n", "c"
    )
    assert plan_edit(tmp_path, crlf, NEW).after_text == (
        "spec:\r\n  runtime:\r\n    image_observed:\r\n"
        f"      image: {NEW.name}\r\n      digest: {NEW.digest}\r\n"
        "      observed_at: 2026-11-27\r\n"
    )
    flow = put(tmp_path, "spec:\n  runtime: {image_observed: {image: a/b:1}}\n", "f")
    assert plan_edit(tmp_path, flow, NEW).after_text == (
        "spec:\n  runtime: {image_observed: {image: "
        f"{NEW.name}, digest: {NEW.digest}, observed_at: 2026-11-27}}}}\n"
    )
    # An image that carries its digest itself gets the new one there; no digest key is added.
    inline = put(
        tmp_path,
        "spec:\n  runtime:\n    image_observed:\n      image: a@sha256:"
        + "0" * 64
        + "\n      observed_at: 2026-01-01\n",
        "i",
    )
    assert runtime(plan_edit(tmp_path, inline, NEW).after_text)["image_observed"] == {
        "image": NEW.reference,
        "observed_at": date(2026, 11, 27),
    }


def test_keys_are_added_after_a_last_line_without_a_newline(tmp_path: Path) -> None:
    for eol in ("\n", "\r\n"):
        text = f"spec:{eol}  runtime:{eol}    image_observed:{eol}      image: a/b:1"
        path = put(tmp_path, text, f"m{len(eol)}")
        assert plan_edit(tmp_path, path, NEW).after_text == (
            f"spec:{eol}  runtime:{eol}    image_observed:{eol}      image: {NEW.name}{eol}"
            f"      digest: {NEW.digest}{eol}      observed_at: 2026-11-27"
        )


def test_bom_crlf_and_a_missing_final_newline_are_kept(tmp_path: Path) -> None:
    text = "\ufeffspec:\r\n  runtime:\r\n    image_observed: a/b:1@sha256:" + "0" * 64
    path = put(tmp_path, text)
    after = plan_edit(tmp_path, path, NEW).after
    assert after == ("\ufeffspec:\r\n  runtime:\r\n    image_observed: " + NEW.reference).encode()


IO = "spec:\n  runtime:\n    image_observed:"
WHERE = "spec.runtime.image_observed"
BY_HAND = "uses a YAML anchor, alias or tag; edit it by hand"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("x: &ref a/b:1\nspec:\n  runtime:\n    image_observed: *ref\n", f"{WHERE} {BY_HAND}"),
        (f"{IO} &ref a/b:1\n", f"{WHERE} {BY_HAND}"),
        (f"{IO} !!str a/b:1\n", f"{WHERE} {BY_HAND}"),
        (f"{IO} |\n      a/b:1\n", f"{WHERE} is a block scalar; edit it by hand"),
        (f"{IO} >\n      a/b:1\n", f"{WHERE} is a block scalar; edit it by hand"),
        (
            "base: &b {image_observed: a/b:1}\nspec:\n  runtime:\n    <<: *b\n",
            f"{WHERE} is not written literally in spec.runtime (a merge key?)",
        ),
        # A mapping on the value's path that an alias shares elsewhere: the span would
        # change both (a review found the other copy silently rewritten).
        (
            "spec:\n  runtime: &rt\n    image_observed: a/b:1\nstaging:\n  runtime: *rt\n",
            f"spec.runtime {BY_HAND}",
        ),
        ("x: &t\n  runtime:\n    image_observed: a/b:1\nspec: *t\n", f"spec {BY_HAND}"),
        ("spec:\n  runtime: &r {image_observed: a/b:1}\nold: [*r]\n", f"spec.runtime {BY_HAND}"),
        (
            "spec:\n  <<: {runtime: {image_observed: a/b:1}}\n",
            "spec.runtime is not written literally in spec (a merge key?)",
        ),
        (f"{IO} a\n    image_observed: b\n", "image_observed appears twice"),
        (f"{IO} [a/b:1]\n", f"{WHERE} must be a string or a mapping"),
        ("spec: [1]\n", "runtime is not inside a mapping"),
        (f"{IO}\n      digest: 'sha256:{'0' * 64}'\n", f"{WHERE}.image is missing"),
        (f"{IO}\n      image: a/b:1\n      image: a/b:2\n", f"{WHERE}.image appears twice"),
        (f"{IO}\n      image: [a]\n", f"{WHERE}.image must be a plain value"),
        (f"{IO}\n      image: &x a/b:1\n", f"{WHERE}.image {BY_HAND}"),
        (b"spec:\n  runtime: \xff\n", "not UTF-8 (byte 17)"),
    ],
)
def test_what_a_span_edit_could_break_is_refused(
    tmp_path: Path, text: str | bytes, said: str
) -> None:
    path = put(tmp_path, text)
    with pytest.raises(EditProblem) as caught:
        plan_edit(tmp_path, path, NEW)
    assert str(caught.value) == f"{path}: {said}"


def test_write_replaces_the_file_keeping_its_mode_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = put(tmp_path, (CORPUS / "mapping-date.yaml").read_bytes())
    path.chmod(0o640)
    edit = plan_edit(tmp_path, path, NEW)
    inode = path.stat().st_ino
    write_edit(tmp_path, edit)
    assert path.read_bytes() == edit.after
    assert path.stat().st_mode & 0o7777 == 0o640
    assert path.stat().st_ino != inode  # replaced by rename, not rewritten in place
    assert sorted(p.name for p in path.parent.iterdir()) == ["module.yaml"]


def test_a_file_changed_after_it_was_read_is_not_overwritten(tmp_path: Path) -> None:
    path = put(tmp_path, (CORPUS / "plain-string.yaml").read_bytes())
    edit = plan_edit(tmp_path, path, NEW)
    someone_elses = path.read_bytes().replace(b"owner: platform-team", b"owner: someone-else")
    path.write_bytes(someone_elses)
    with pytest.raises(EditConflict) as caught:
        write_edit(tmp_path, edit)
    assert str(caught.value) == (
        f"{path}: changed on disk since it was read; not overwritten (run observe again)"
    )
    assert path.read_bytes() == someone_elses
    assert sorted(p.name for p in path.parent.iterdir()) == ["module.yaml"]


def test_the_new_text_is_renamed_into_place_from_a_hidden_file_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = put(tmp_path, (CORPUS / "plain-string.yaml").read_bytes())
    edit = plan_edit(tmp_path, path, NEW)
    renames: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def recording_replace(src: str, dst: Path) -> None:
        renames.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", recording_replace)
    write_edit(tmp_path, edit)
    # Same folder, so the same filesystem and an atomic rename; hidden, should a crash leave it.
    ((src, dst),) = renames
    assert dst == path.resolve() and src.parent == dst.parent
    assert src.name.startswith(".platformctl-") and src.name.endswith(".tmp")
    assert path.read_bytes() == edit.after


def test_a_file_gone_or_replaced_after_planning_is_not_written(tmp_path: Path) -> None:
    path = put(tmp_path, (CORPUS / "plain-string.yaml").read_bytes())
    edit = plan_edit(tmp_path, path, NEW)
    path.unlink()
    with pytest.raises(EditConflict) as caught:
        write_edit(tmp_path, edit)
    assert str(caught.value) == (
        f"{path}: cannot be read again before writing ({path.resolve()}: cannot read: No such "
        "file or directory); not written"
    )
    assert not path.exists() and sorted(p.name for p in path.parent.iterdir()) == []
    os.mkfifo(path)
    with pytest.raises(EditProblem) as caught:
        write_edit(tmp_path, edit)
    assert str(caught.value) == f"{path}: cannot write: not a regular file (a FIFO); left as it is"
    assert stat.S_ISFIFO(path.lstat().st_mode)
    assert sorted(p.name for p in path.parent.iterdir()) == ["module.yaml"]


def test_a_link_moved_to_another_file_inside_the_root_is_not_written(tmp_path: Path) -> None:
    first = tmp_path / "shared" / "a.yaml"
    first.parent.mkdir()
    first.write_text("spec:\n  runtime:\n    image_observed: a/b:1\n")
    second = first.with_name("b.yaml")
    shutil.copyfile(first, second)
    link = tmp_path / "modules" / "m" / "module.yaml"
    link.parent.mkdir(parents=True)
    link.symlink_to(first)
    edit = plan_edit(tmp_path, link, NEW)
    link.unlink()
    link.symlink_to(second)
    with pytest.raises(EditConflict) as caught:
        write_edit(tmp_path, edit)
    assert str(caught.value) == (
        f"{link}: now resolves to {second.resolve()}, not {first.resolve()}; not written"
    )
    assert (
        first.read_text() == second.read_text() == "spec:\n  runtime:\n    image_observed: a/b:1\n"
    )


def test_a_writer_who_is_not_root_keeps_the_files_owner(tmp_path: Path) -> None:
    """A shared, group-writable repository: the file belongs to someone else, who may write
    it, and only root may give a new file away: it is written in place, so its owner, group
    and mode stay (a replacement made it the writer's)."""
    with shared_manifest() as (root, path):
        path.chmod(0o666)
        edit = plan_edit(root, path, NEW)
        inode = path.stat().st_ino
        assert as_nobody(lambda: write_edit(root, edit)) == ""
        info = path.stat()
        assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (0, 0, 0o666)
        assert info.st_ino == inode
        assert path.read_bytes() == edit.after


@contextlib.contextmanager
def shared_manifest() -> Iterator[tuple[Path, Path]]:
    """A platform root anyone may write in, and its manifest (root only: the tests switch
    to the user nobody). Under /tmp, not TMPDIR: nobody must be able to reach it."""
    if os.getuid() != 0:
        pytest.skip("switching to another user needs root")
    root = Path(tempfile.mkdtemp(prefix="platformctl-shared-", dir="/tmp"))
    try:
        path = put(root, (CORPUS / "plain-string.yaml").read_bytes())
        for folder in (root, root / "modules", path.parent):
            folder.chmod(0o777)
        yield root, path
    finally:
        shutil.rmtree(root)


def test_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside.yaml"
    outside.write_text("spec:\n  runtime:\n    image_observed: a/b:1\n")
    link = root / "modules" / "m" / "module.yaml"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    with pytest.raises(EditProblem, match="outside the platform root"):
        plan_edit(root, link, NEW)
    assert outside.read_text() == "spec:\n  runtime:\n    image_observed: a/b:1\n"


def test_a_symlink_inside_the_root_is_followed_and_stays_a_symlink(tmp_path: Path) -> None:
    shared = tmp_path / "shared" / "web.yaml"
    shared.parent.mkdir()
    shared.write_text("spec:\n  runtime:\n    image_observed: a/b:1\n")
    link = tmp_path / "modules" / "m" / "module.yaml"
    link.parent.mkdir(parents=True)
    link.symlink_to(shared)
    write_edit(tmp_path, plan_edit(tmp_path, link, NEW))
    assert link.is_symlink()
    assert runtime(shared.read_text())["image_observed"] == NEW.reference


def test_a_link_swapped_to_point_out_after_planning_is_not_written(tmp_path: Path) -> None:
    inside = tmp_path / "modules" / "m" / "real.yaml"
    inside.parent.mkdir(parents=True)
    inside.write_text("spec:\n  runtime:\n    image_observed: a/b:1\n")
    link = inside.parent / "module.yaml"
    link.symlink_to(inside)
    edit = plan_edit(tmp_path, link, NEW)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.yaml"
    shutil.copyfile(inside, outside)
    try:
        link.unlink()
        link.symlink_to(outside)
        with pytest.raises(EditProblem, match="outside the platform root"):
            write_edit(tmp_path, edit)
        assert outside.read_text() == "spec:\n  runtime:\n    image_observed: a/b:1\n"
    finally:
        outside.unlink()


def test_the_safety_net_refuses_an_edit_that_changes_anything_else(tmp_path: Path) -> None:
    from platformctl.declared.edit import _verify

    old = "spec:\n  runtime:\n    host: alpha\n    image_observed: a/b:1\n"
    bad = f"spec:\n  runtime:\n    host: beta\n    image_observed: {NEW.reference}\n"
    with pytest.raises(EditProblem, match="would change more than"):
        _verify(tmp_path / "m.yaml", old, bad, NEW.reference)
    good = bad.replace("beta", "alpha")
    _verify(tmp_path / "m.yaml", old, good, NEW.reference)


# --- generated manifests ------------------------------------------------------------------

_words = st.from_regex(r"[a-z][a-z-]{0,7}", fullmatch=True)
_comment = st.one_of(st.just(""), _words.map(lambda w: f"  # {w}"))
_quote = st.sampled_from(["", "'", '"'])


@st.composite
def manifests(draw: st.DrawFn) -> str:
    """A manifest with random indentation, comments, quoting, unrelated keys and form."""
    ind = " " * draw(st.sampled_from([2, 3, 4]))
    q = draw(_quote)
    ref = "reg.example:5000/org/app:1.0@sha256:" + "0" * 64
    lines = [f"# {draw(_words)}", "apiVersion: platform/v1"]
    # Unrelated keys, each once: a key written twice is refused by the manifest reader.
    lines += [
        f"{key}x: {draw(_words)}{draw(_comment)}"
        for key in draw(st.lists(_words, max_size=2, unique=True))
    ]
    lines += ["spec:", f"{ind}runtime:{draw(_comment)}", f"{ind * 2}host: alpha"]
    extra = [
        f"{ind * 2}{key}y: {draw(_quote)}v{draw(_comment)}"
        for key in draw(st.lists(_words, max_size=2, unique=True))
    ]
    extra = [
        e if e.count("'") != 1 and e.count('"') != 1 else e.replace("'", "").replace('"', "")
        for e in extra
    ]
    lines += extra
    if draw(st.booleans()):
        lines.append(f"{ind * 2}image_observed: {q}{ref}{q}{draw(_comment)}")
    else:
        entries = [
            f"{ind * 3}image: {q}reg.example:5000/org/app:1.0{q}{draw(_comment)}",
            f"{ind * 3}digest: {q}sha256:{'0' * 64}{q}",
            f"{ind * 3}observed_at: {draw(st.sampled_from(['2026-01-01', repr('2026-01-01')]))}",
        ]
        order = draw(st.permutations(entries))
        lines.append(f"{ind * 2}image_observed:{draw(_comment)}")
        lines += order
    lines += [f"{ind}other:", f"{ind * 2}- {draw(_words)}", f"{ind * 2}- {{a: 1, b: [x, y]}}"]
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return newline.join(lines) + newline


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=manifests())
def test_generated_manifests_change_only_their_value_lines(tmp_path: Path, text: str) -> None:
    path = put(tmp_path, text)
    after = plan_edit(tmp_path, path, NEW).after_text
    changes = changed_lines(text, after)
    assert changes and all(any(k in line for k in VALUE_KEYS) for line in changes), changes
    assert len(after.splitlines()) == len(text.splitlines())
    value = runtime(after)["image_observed"]
    if isinstance(value, str):
        assert value == NEW.reference
    else:
        assert value == {
            "image": NEW.name,
            "digest": NEW.digest,
            "observed_at": date(2026, 11, 27) if "observed_at: 2" in text else "2026-11-27",
        }


def test_a_manifest_that_aliases_expand_to_a_huge_tree_is_refused_quickly(
    tmp_path: Path,
) -> None:
    """713 bytes of aliases under an unrelated key: comparing the old document with the
    edited one walked 10**11 values and observe never finished."""
    lines = ["x0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"]
    lines += [f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 11)]
    path = put(tmp_path, "\n".join(lines) + "\nspec:\n  runtime:\n    image_observed: a/b:1\n")
    with pytest.raises(EditProblem, match="more than 100,000 values once its aliases"):
        plan_edit(tmp_path, path, NEW)


def test_a_manifest_is_edited_when_the_manifest_reader_reads_it_and_refused_when_it_does_not(
    tmp_path: Path,
) -> None:
    """The edit reads with the manifest reader's parser (libyaml's): a tab before a comment,
    or lists nested 600 deep, stopped the pure-Python parser the edit used, so observe
    refused a manifest drift-check judged; nested past libyaml's limit, both refuse it."""
    for junk in ("'platform-team'\t# owner", "[" * 600 + "]" * 600):
        text = f"junk: {junk}\nspec:\n  runtime:\n    image_observed: a/b:1\n"
        path = put(tmp_path, text)
        edit = plan_edit(tmp_path, path, NEW)
        assert changed_lines(text, edit.after_text) == [
            "-    image_observed: a/b:1\n",
            f"+    image_observed: {NEW.reference}\n",
        ]
    deep = "[" * 1001 + "]" * 1001
    path = put(tmp_path, f"junk: {deep}\nspec:\n  runtime:\n    image_observed: a/b:1\n")
    with pytest.raises(EditProblem) as caught:
        plan_edit(tmp_path, path, NEW)
    assert str(caught.value).startswith(f"{path}:1: invalid YAML: ")


def test_a_folder_that_cannot_be_synced_after_the_rename_does_not_unsay_the_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rename is done when the folder is synced: a folder the writer may not open for
    reading (mode 0300) or a filesystem without folder sync reported "cannot write" for a
    file that was written."""
    import platformctl.paths

    path = put(tmp_path, (CORPUS / "plain-string.yaml").read_bytes())
    edit = plan_edit(tmp_path, path, NEW)

    def refused(folder: Path) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(platformctl.paths, "_sync_folder", refused)
    write_edit(tmp_path, edit)
    assert path.read_bytes() == edit.after


@pytest.mark.parametrize(
    ("text", "inserted"),
    [
        # One CRLF line in an LF file: the new lines take the line break of the line they
        # follow, where they took CRLF because the file held one somewhere.
        ("# a\r\nspec:\n  runtime:\n    image_observed:\n      image: a/b:1\n", "\n"),
        # A file of CR alone whose value is its last line, without a final break.
        ("spec:\r  runtime:\r    image_observed:\r      image: a/b:1", "\r"),
    ],
)
def test_new_lines_take_the_line_break_of_the_line_they_follow(
    tmp_path: Path, text: str, inserted: str
) -> None:
    path = put(tmp_path, text)
    after = plan_edit(tmp_path, path, NEW).after_text
    image = text[text.index("image: ") :].split("1", 1)[0]
    start = after.index(image.replace("a/b:", NEW.repository + ":"))
    tail = after[start:]
    breaks = [b for b in ("\r\n", "\r", "\n") if b in tail]
    assert breaks[0] == inserted
    if inserted == "\n":
        assert "\r" not in tail
    else:
        assert "\n" not in after and not after.endswith("\r")
    assert runtime(after.replace("\r", "\n"))["image_observed"]["digest"] == NEW.digest


def as_nobody(action: Callable[[], object], groups: Sequence[int] = ()) -> str:
    """Run ``action`` in a child process as the user nobody; what it raised, or ""."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        said = b""
        try:
            os.setgroups(list(groups))
            os.setgid(65534)
            os.setuid(65534)
            action()
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            said = str(exc).encode() or repr(exc).encode()
        finally:
            os.write(write_end, said)
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        said = pipe.read().decode()
    os.waitpid(pid, 0)
    return said


def test_a_file_its_mode_keeps_from_the_writer_is_not_written_and_a_group_is_kept() -> None:
    """The folder lets anyone replace the file, as `sed -i` would; the file's own mode says
    this writer may not change it: refused, and the file is as it was. A file the writer may
    change but whose owner and group a replacement could not keep is written in place, so
    the group's rights stay with the group."""
    with shared_manifest() as (root, path):
        before = path.read_bytes()
        edit = plan_edit(root, path, NEW)
        for uid, gid, mode in ((0, 0, 0o444), (0, 100, 0o664)):
            os.chown(path, uid, gid)
            path.chmod(mode)
            assert as_nobody(lambda: write_edit(root, edit)) == (
                f"{path}: cannot write: not writable by this user (mode {mode:04o}, owner "
                f"{uid}:{gid}); left as it is"
            )
            assert path.read_bytes() == before
            assert (path.stat().st_uid, path.stat().st_gid) == (uid, gid)
            assert sorted(p.name for p in path.parent.iterdir()) == ["module.yaml"]
        # The writer's own file in a group it is not in: a replacement would be in the
        # writer's group, and the group's rw would go to another group.
        os.chown(path, 65534, 100)
        path.chmod(0o664)
        assert as_nobody(lambda: write_edit(root, edit)) == ""
        info = path.stat()
        assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (65534, 100, 0o664)
        assert path.read_bytes() == edit.after
        assert sorted(p.name for p in path.parent.iterdir()) == ["module.yaml"]


def test_a_file_with_a_second_hard_link_is_written_in_place_and_keeps_it(tmp_path: Path) -> None:
    """A rename would split the two names: the other would keep the old text."""
    path = put(tmp_path, (CORPUS / "plain-string.yaml").read_bytes())
    other = tmp_path / "other-name.yaml"
    os.link(path, other)
    edit = plan_edit(tmp_path, path, NEW)
    write_edit(tmp_path, edit)
    assert path.stat().st_nlink == 2 and other.read_bytes() == path.read_bytes() == edit.after


def test_extended_attributes_are_kept(tmp_path: Path) -> None:
    """ACLs and labels live in extended attributes; a replacement without them would quietly
    change who may read the file."""
    path = put(tmp_path, (CORPUS / "plain-string.yaml").read_bytes())
    os.setxattr(path, "user.reviewed-by", b"platform-team")
    edit = plan_edit(tmp_path, path, NEW)
    write_edit(tmp_path, edit)
    assert os.getxattr(path, "user.reviewed-by") == b"platform-team"
    assert path.read_bytes() == edit.after


def test_a_manifest_saved_by_rename_while_it_is_written_in_place_is_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In place (a second hard link), an editor that saved the manifest by rename between
    the open and the check had the check pass on its file and the edit go to ours, which no
    name led to any more: reported written, and lost."""
    import platformctl.declared.edit as edit_module

    path = put(tmp_path, (CORPUS / "plain-string.yaml").read_bytes())
    os.link(path, tmp_path / "other-name.yaml")
    edit = plan_edit(tmp_path, path, NEW)
    check = edit_module._check_unchanged

    def saved_meanwhile(root: Path, real: Path, planned: object) -> None:
        fresh = path.with_name("module.yaml.new")
        fresh.write_bytes(edit.before)  # the same text, a new file
        os.replace(fresh, path)
        check(root, real, edit)

    monkeypatch.setattr(edit_module, "_check_unchanged", saved_meanwhile)
    with pytest.raises(EditProblem) as caught:
        write_edit(tmp_path, edit)
    assert str(caught.value) == (
        f"{path}: cannot write: replaced on disk while it was being written; left as it is"
    )
    assert path.read_bytes() == edit.before
