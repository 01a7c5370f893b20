"""The parsed-YAML cache: a run sees exactly what parsing the files' current bytes gives, and
skips PyYAML when it has seen those bytes before."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from platformctl import cachefile
from platformctl.declared import yamlcache, yamlfile
from platformctl.declared.manifests import load_declared
from platformctl.declared.model import CheckedModule
from platformctl.declared.yamlcache import FILE_NAME, MISSING, ParsedYamlCache
from platformctl.declared.yamlfile import load_yaml
from tests.conftest import write_compose, write_module


def reopened(folder: Path) -> ParsedYamlCache:
    cache = ParsedYamlCache.open(folder)
    assert cache is not None
    return cache


def cached_once(folder: Path, root: Path, path: Path) -> tuple[Any, Any]:
    """What a first run (which parses) and a second run (which may use the cache) read."""
    first = reopened(folder)
    before = load_yaml(path, root, first)
    first.close()
    second = reopened(folder)
    try:
        return before, load_yaml(path, root, second)
    finally:
        second.close()


def stored(folder: Path) -> int:
    with sqlite3.connect(folder / FILE_NAME) as db:
        return int(db.execute("SELECT count(*) FROM doc").fetchone()[0])


def files_read(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The repository files the YAML reader reads from now on, in order."""
    reads: list[Path] = []
    read = yamlfile.read_repo_file

    def counted(root: Path, path: Path, cap: int) -> bytes:
        reads.append(path)
        return read(root, path, cap)

    monkeypatch.setattr(yamlfile, "read_repo_file", counted)
    return reads


# --- what a CLI run reads -----------------------------------------------------------------

RUN = """
import json, sys
from platformctl.cli import main
out = sys.stdout
sys.stdout = open({report!r}, "w")
try:
    main(["drift-check", "--root", {root!r}, "--ssh-config", {config!r}, "--db", {db!r},
          "--json", "--connect-timeout", "5"])
except SystemExit as exc:
    sys.stdout.close()
    report = json.load(open({report!r}))
    declared = {{m["module"]: (m["declared"]["image"], (m["compose"] or {{}}).get("image"))
                for m in report["modules"]}}
    print(exc.code, "yaml" in sys.modules, json.dumps(declared, sort_keys=True), file=out)
"""


def test_a_second_run_takes_unchanged_files_from_the_cache_and_an_edit_is_seen_at_once(
    tmp_path: Path,
) -> None:
    root = tmp_path / "platform"
    manifest = write_module(
        root,
        "web",
        {
            "host": "nowhere",
            "orchestrator": "docker",
            "container": "web",
            "image_observed": "nginx:1.27",
        },
    )
    write_module(
        root,
        "api",
        {
            "host": "nowhere",
            "orchestrator": "docker-compose",
            "compose_service": "api",
            "image_observed": "api:1.0",
        },
    )
    write_compose(root, "apps", {"api": {"image": "api:1.0"}})
    config = tmp_path / "ssh_config"
    config.write_text("Host nowhere\n  HostName 127.0.0.1\n  Port 1\n")  # refused at once
    code = RUN.format(
        root=str(root), config=str(config), db=str(tmp_path / "s.db"), report=str(tmp_path / "r")
    )

    def run() -> str:
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    declared = '{"api": ["api:1.0", "api:1.0"], "web": ["nginx:1.27", null]}'
    assert run() == f"5 True {declared}"  # parsed, and remembered
    assert run() == f"5 False {declared}"  # every file from the cache: PyYAML not even imported

    # Same size, same modification time: only the bytes differ, and that is what counts.
    info = manifest.stat()
    manifest.write_text(manifest.read_text().replace("nginx:1.27", "nginx:1.28"))
    os.utime(manifest, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert manifest.stat().st_size == info.st_size
    assert run() == f"5 True {declared.replace('nginx:1.27', 'nginx:1.28')}"


def test_manifests_looked_up_together_each_get_their_own_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run looks its manifests up a batch at a time (several queries per batch here): every
    module still gets its own file's document, next to files that cannot be read or parsed,
    two files of the same bytes, and files edited since the last run."""
    monkeypatch.setattr(yamlcache, "_QUERY_SIZE", 7)
    root = tmp_path / "platform"
    count = 150  # four batches: 8 files, 64, 64 and the rest

    def runtime(i: int, tag: str = "1") -> dict[str, str]:
        return {
            "host": "h",
            "orchestrator": "docker",
            "container": "c",
            "image_observed": f"i{i}:{tag}",
        }

    for i in range(count):
        write_module(root, f"m{i:03d}", runtime(i))
    write_module(root, "m150-same-bytes-as-m007", runtime(7))  # another batch
    write_module(root, "m011b-same-bytes-as-m011", runtime(11))  # the same batch
    (root / "modules" / "m020" / "module.yaml").write_bytes(b"spec: \xff\n")
    (root / "modules" / "m064" / "module.yaml").write_text("spec: [unclosed\n")
    fifo = root / "modules" / "m100" / "module.yaml"
    fifo.unlink()
    os.mkfifo(fifo)
    parsed: list[Path] = []
    parse = yamlfile._parse

    def counted(path: Path, text: str, compose: bool) -> Any:
        parsed.append(path)
        return parse(path, text, compose)

    monkeypatch.setattr(yamlfile, "_parse", counted)

    def run() -> dict[str, str]:
        cache = reopened(tmp_path / "cache")
        try:
            modules = load_declared(root, cache).modules
        finally:
            cache.close()
        return {
            m.name: m.declared_raw if isinstance(m, CheckedModule) else getattr(m, "problem", "")
            for m in modules
        }

    expected = {f"m{i:03d}": f"i{i}:1" for i in range(count)}
    expected["m150-same-bytes-as-m007"] = "i7:1"
    expected["m011b-same-bytes-as-m011"] = "i11:1"
    expected["m020"] = (
        f"{root}/modules/m020/module.yaml: not UTF-8 (byte 6); save the file as UTF-8"
    )
    expected["m064"] = "modules/m064/module.yaml:2: invalid YAML"
    expected["m100"] = "not a regular file (a FIFO)"

    def matches(got: dict[str, str]) -> bool:
        return got.keys() == expected.keys() and all(expected[name] in got[name] for name in got)

    first = run()
    assert matches(first), first
    # Every file but the FIFO (never read), the one not UTF-8 (never parsed) and the second of
    # each pair of the same bytes, taken from what this run parsed moments before.
    assert len(parsed) == count + 2 - 4
    assert not {"m150-same-bytes-as-m007", "m011b-same-bytes-as-m011"} & {
        p.parent.name for p in parsed
    }
    parsed.clear()
    assert run() == first
    assert [p.parent.name for p in parsed] == ["m064"]  # only what cannot be kept

    # On each side of every batch's end (m011b sorts in after m011: m070 is the 72nd file).
    edited = (0, 7, 8, 70, 71, 134, 135, 149)
    for i in edited:
        write_module(root, f"m{i:03d}", runtime(i, "2"))
        expected[f"m{i:03d}"] = f"i{i}:2"
    parsed.clear()
    third = run()
    assert matches(third), third
    assert sorted(p.parent.name for p in parsed) == sorted([f"m{i:03d}" for i in edited] + ["m064"])


def test_manifests_are_looked_up_a_batch_at_a_time_and_the_first_hosts_start_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm run of 200 manifests asks the cache a handful of times, not once per file (a
    query per file cost more than reading the files), and hands the first module over after
    a few files, so collecting its host starts while the rest are read."""
    root = tmp_path / "platform"
    for i in range(200):
        write_module(
            root,
            f"m{i:03d}",
            {"host": f"h{i}", "orchestrator": "docker", "container": "c", "image_observed": "i:1"},
        )
    reads = files_read(monkeypatch)
    first = reopened(tmp_path / "cache")
    load_declared(root, first)
    first.close()

    cache = reopened(tmp_path / "cache")
    queries: list[str] = []
    cache._file.db.set_trace_callback(queries.append)  # type: ignore[union-attr]
    handed: list[int] = []
    reads.clear()
    try:
        modules = load_declared(root, cache, on_module=lambda m: handed.append(len(reads))).modules
    finally:
        cache.close()
    assert [m.host for m in modules] == [f"h{i}" for i in range(200)]
    assert len(reads) == 200  # every file read where the count sees it
    lookups = [q for q in queries if "FROM doc WHERE" in q]
    assert 1 < len(lookups) < 10, lookups  # 8 files, then 64 at a time
    assert handed[0] <= 8


def test_a_batch_of_large_manifests_ends_at_a_mebibyte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Manifests of 600 KB (a long comment, well under the 4 MiB cap) are handed over two at
    a time: a batch does not hold eight of them in memory first."""
    root = tmp_path / "platform"
    for i in range(6):
        path = write_module(
            root,
            f"m{i}",
            {"host": "h", "orchestrator": "docker", "container": "c", "image_observed": f"i{i}:1"},
        )
        path.write_text(path.read_text() + ("# " + "x" * 998 + "\n") * 600)
    reads = files_read(monkeypatch)
    handed: list[int] = []
    modules = load_declared(root, on_module=lambda m: handed.append(len(reads))).modules
    assert [m.declared_raw for m in modules if isinstance(m, CheckedModule)] == [
        f"i{i}:1" for i in range(6)
    ]
    assert handed == [2, 2, 4, 4, 6, 6]


def test_copies_of_a_document_the_cache_cannot_keep_cost_no_query_each(tmp_path: Path) -> None:
    """Ten manifests of the same bytes holding a date (which JSON cannot give back, so never
    kept): each is parsed, as every run parses such files, without a query apiece."""
    root = tmp_path / "platform"
    for i in range(10):
        write_module(
            root,
            f"m{i}",
            {"host": "h", "orchestrator": "docker", "container": "c", "image_observed": "i:1"},
            when=date(2026, 1, 1),
        )
        # The same bytes in every file: the name comes from the folder.
    cache = reopened(tmp_path / "cache")
    queries: list[str] = []
    cache._file.db.set_trace_callback(queries.append)  # type: ignore[union-attr]
    try:
        modules = load_declared(root, cache).modules
    finally:
        cache.close()
    assert [m.name for m in modules if isinstance(m, CheckedModule)] == [f"m{i}" for i in range(10)]
    assert len([q for q in queries if "FROM doc WHERE" in q]) == 2  # a batch of 8, then 2


class _LookupsFail:
    """A cache connection whose document lookups fail, as a damaged file's do."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, *args: Any) -> Any:
        if "FROM doc WHERE" in sql:
            raise sqlite3.OperationalError("disk I/O error")
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def test_a_cache_failing_in_the_middle_of_a_run_costs_parsing_never_a_document(
    tmp_path: Path,
) -> None:
    """The cache answers the first batch, then its lookups fail: the run goes on parsing,
    and every module still gets its own file's document (two of them of the same bytes)."""
    root = tmp_path / "platform"
    images = [f"i{i}:1" for i in range(100)]
    images[51] = images[50]
    for i, image in enumerate(images):
        write_module(
            root,
            f"m{i:03d}",
            {"host": "h", "orchestrator": "docker", "container": "c", "image_observed": image},
        )
    first = reopened(tmp_path / "cache")
    load_declared(root, first)
    first.close()

    cache = reopened(tmp_path / "cache")
    file = cache._file
    assert file is not None
    real = file.db
    answered = 0

    def fail_after_the_first_batch(module: object) -> None:
        nonlocal answered
        answered += 1
        if answered == 8:
            file.db = _LookupsFail(real)  # type: ignore[assignment]

    try:
        modules = load_declared(root, cache, on_module=fail_after_the_first_batch).modules
    finally:
        cache.close()
    assert [m.declared_raw for m in modules if isinstance(m, CheckedModule)] == images
    assert cache._file is None  # the failure was met, and the cache given up


# --- what is kept -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("when: 2026-01-01\n", {"when": date(2026, 1, 1)}),
        ("at: 2026-01-01 10:00:00\n", {"at": datetime(2026, 1, 1, 10, 0)}),
        ("tags: !!set {a: null}\n", {"tags": {"a"}}),
        ("1: one\n", {1: "one"}),
        ("true: yes\n", {True: True}),
        ("blob: !!binary aGk=\n", {"blob": b"hi"}),
        ("ratio: .inf\n", {"ratio": math.inf}),
    ],
    ids=["date", "timestamp", "set", "int-key", "bool-key", "binary", "infinity"],
)
def test_documents_json_cannot_hold_exactly_are_parsed_every_time(
    tmp_path: Path, text: str, expected: Any
) -> None:
    path = tmp_path / "doc.yaml"
    path.write_text(text)
    before, after = cached_once(tmp_path / "cache", tmp_path, path)
    assert before == after == expected
    assert [type(k) for k in after] == [type(k) for k in expected]
    assert stored(tmp_path / "cache") == 0


def test_a_document_that_refers_to_itself_or_explodes_is_parsed_every_time(tmp_path: Path) -> None:
    loop = tmp_path / "loop.yaml"
    loop.write_text("a: &x [1, *x]\n")
    bomb = tmp_path / "bomb.yaml"
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    bomb.write_text("\n".join(lines) + "\n")  # 10 million values through aliases
    folder = tmp_path / "cache"
    cache = reopened(folder)
    looped = load_yaml(loop, tmp_path, cache)
    assert looped["a"][1] is looped["a"]
    load_yaml(bomb, tmp_path, cache)
    cache.close()
    assert stored(folder) == 0


plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(document=plain)
def test_a_cached_document_is_what_parsing_gives_value_for_value_and_type_for_type(
    tmp_path_factory: pytest.TempPathFactory, document: Any
) -> None:
    folder = tmp_path_factory.mktemp("plain")
    path = folder / "doc.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    before, after = cached_once(folder / "cache", folder, path)
    assert json.dumps(after) == json.dumps(before)
    assert _types(after) == _types(before)
    assert stored(folder / "cache") == 1


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value).__name__


def test_invalid_yaml_is_reported_the_same_with_a_cache(tmp_path: Path) -> None:
    from platformctl.declared.yamlfile import YamlProblem

    path = tmp_path / "bad.yaml"
    path.write_text("a: [1, 2\n")
    for _ in range(2):
        cache = reopened(tmp_path / "cache")
        with pytest.raises(YamlProblem, match=r"bad.yaml:2: invalid YAML"):
            load_yaml(path, tmp_path, cache)
        cache.close()


# --- a cache that cannot be trusted or used -----------------------------------------------


def test_a_cache_folder_others_may_write_to_is_not_used(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    folder.chmod(0o777)
    assert ParsedYamlCache.open(folder) is None
    folder.chmod(0o700)
    reopened(folder).close()
    (folder / FILE_NAME).chmod(0o666)
    assert ParsedYamlCache.open(folder) is None


def test_the_cache_is_created_private(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "platformctl"
    reopened(folder).close()
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (folder / FILE_NAME).stat().st_mode & 0o777 == 0o600


def test_a_damaged_cache_file_is_started_again(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    (folder / FILE_NAME).write_bytes(b"not a database" * 100)
    (folder / FILE_NAME).chmod(0o600)
    path = tmp_path / "doc.yaml"
    path.write_text("a: 1\n")
    assert cached_once(folder, tmp_path, path) == ({"a": 1}, {"a": 1})
    assert stored(folder) == 1


def test_a_cache_file_found_damaged_while_read_is_started_again(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    path = tmp_path / "doc.yaml"
    path.write_text("a: 1\n")
    cached_once(folder, tmp_path, path)
    db = sqlite3.connect(folder / FILE_NAME)
    page = db.execute("PRAGMA page_size").fetchone()[0]
    # The page of the documents' table (after the schema and the parser label's table).
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'doc'").fetchone()[0]
    db.close()
    with open(folder / FILE_NAME, "r+b") as fh:
        fh.seek(page * (root - 1))
        fh.write(b"\xa5" * page)
    cache = ParsedYamlCache.open(folder)  # opens: the label's table is intact
    assert cache is not None
    assert load_yaml(path, tmp_path, cache) == {"a": 1}  # parsed: the lookup failed
    cache.close()
    assert cached_once(folder, tmp_path, path) == ({"a": 1}, {"a": 1})
    again = reopened(folder)  # a new file, in use again
    try:
        assert again.get(path.read_bytes()) == {"a": 1}
    finally:
        again.close()


def test_an_unwritable_cache_folder_means_no_cache_and_no_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert ParsedYamlCache.open(blocker / "platformctl") is None


def test_a_cache_busy_in_another_run_costs_its_documents_not_the_run(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    reopened(folder).close()
    path = tmp_path / "doc.yaml"
    path.write_text("a: 1\n")
    holder = sqlite3.connect(folder / FILE_NAME, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another run, writing
    try:
        cache = ParsedYamlCache.open(folder)  # WAL: reading goes on beside a writer
        assert cache is not None
        assert load_yaml(path, tmp_path, cache) == {"a": 1}
        cache.close()  # cannot write within its busy timeout: the documents are dropped
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert stored(folder) == 0
    assert cached_once(folder, tmp_path, path) == ({"a": 1}, {"a": 1})


def test_another_pyyaml_or_platformctl_empties_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "cache"
    path = tmp_path / "doc.yaml"
    path.write_text("a: 1\n")
    cached_once(folder, tmp_path, path)
    cache = reopened(folder)
    assert cache.get(path.read_bytes()) == {"a": 1}
    cache.close()
    monkeypatch.setattr(yamlcache, "_parser_identity", lambda: "another parser")
    cache = reopened(folder)
    assert cache.get(path.read_bytes()) is MISSING
    cache.close()
    assert stored(folder) == 0


def test_the_parser_identity_names_the_pyyaml_that_import_would_load() -> None:
    identity = yamlcache._parser_identity()
    assert identity.split("|")[1].startswith(f"{os.path.dirname(yaml.__file__)}/__init__.py:")
    assert any("/_yaml." in part for part in identity.split("|")) == yaml.__with_libyaml__


def test_the_cache_keeps_the_newest_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(yamlcache, "MAX_ENTRIES", 3)
    folder = tmp_path / "cache"
    for i in range(5):
        cache = reopened(folder)
        cache.add(f"n: {i}\n".encode(), {"n": i})
        cache.close()
    cache = reopened(folder)
    kept = [i for i in range(5) if cache.get(f"n: {i}\n".encode()) is not MISSING]
    cache.close()
    assert kept == [2, 3, 4]


def test_the_default_folder_follows_xdg_cache_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cachefile.default_cache_dir() == tmp_path / "xdg" / "platformctl"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cachefile.default_cache_dir() == tmp_path / "home" / ".cache" / "platformctl"


def test_an_integer_too_long_for_json_is_parsed_every_time(tmp_path: Path) -> None:
    path = tmp_path / "doc.yaml"
    path.write_text("n: 0x" + "F" * 4000 + "\n")  # past Python's int-to-text limit
    before, after = cached_once(tmp_path / "cache", tmp_path, path)
    assert before == after == {"n": int("F" * 4000, 16)}
    assert stored(tmp_path / "cache") == 0


def test_documents_of_one_pyyaml_never_land_under_anothers_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run A opens the cache, run B with another PyYAML relabels and empties it, then A
    finishes: A must neither serve B's entries nor write its own under B's label."""
    folder = tmp_path / "cache"
    path = tmp_path / "doc.yaml"
    path.write_text("a: 1\n")
    cached_once(folder, tmp_path, path)
    run_a = reopened(folder)
    run_a2 = reopened(folder)  # one that parsed everything itself: it only adds
    run_a2.add(b"d: 4\n", {"d": 4})
    with monkeypatch.context() as other:
        other.setattr(yamlcache, "_parser_identity", lambda: "another PyYAML")
        run_b = reopened(folder)
        run_b.add(path.read_bytes(), {"a": "as B parsed it"})
        run_b.close()
    assert run_a.get(path.read_bytes()) is MISSING  # B's cache now: A stops using it
    run_a.add(b"c: 3\n", {"c": 3})
    run_a.close()
    run_a2.close()
    with sqlite3.connect(folder / FILE_NAME) as db:
        assert db.execute("SELECT value FROM meta").fetchall() == [("another PyYAML",)]
        rows = [json.loads(row[0]) for row in db.execute("SELECT json FROM doc")]
    assert rows == [{"a": "as B parsed it"}]


def test_a_relative_xdg_cache_home_is_ignored_as_the_spec_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cachefile.default_cache_dir() == tmp_path / "home" / ".cache" / "platformctl"


def test_the_cache_is_kept_for_what_the_loader_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A loader that refuses more (a key written twice) must not be served documents the one
    before it accepted."""
    from platformctl.declared import yamlcache, yamlfile

    before = yamlcache._parser_identity()
    monkeypatch.setattr(yamlfile, "LOADER_REVISION", yamlfile.LOADER_REVISION + 1)
    assert yamlcache._parser_identity() != before
