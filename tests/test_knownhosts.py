"""known_hosts matching and the StrictHostKeyChecking policy, as OpenSSH applies them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from platformctl.collector.knownhosts import KeyCheck, KeyDecision, KnownHosts, host_key_decision
from tests.conftest import IN_CI

KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfTheLabServerxxxxxxxxxxxxxxxxxxx"
OTHER = "AAAAC3NzaC1lZDI1NTE5AAAAIAnotherKeyEntirelyxxxxxxxxxxxxxxxxxxxxxx"


def known(tmp_path: Path, *lines: str) -> KnownHosts:
    path = tmp_path / "known_hosts"
    path.write_text("".join(f"{line}\n" for line in lines))
    return KnownHosts([str(path)])


def check(hosts: KnownHosts, name: str, key: str = KEY) -> KeyCheck:
    return hosts.check(name, "ssh-ed25519", key)


@pytest.mark.parametrize(
    ("pattern", "name", "verdict"),
    [
        ("[127.0.0.1]:2222", "[127.0.0.1]:2222", KeyCheck.KNOWN),
        ("[127.0.0.1]:2222", "[127.0.0.1]:2223", KeyCheck.UNKNOWN),
        ("[127.0.0.*]:2222", "[127.0.0.1]:2222", KeyCheck.KNOWN),
        ("*.example.com", "db.example.com", KeyCheck.KNOWN),
        ("*.example.com", "example.com", KeyCheck.UNKNOWN),
        ("db?.example.com", "db1.example.com", KeyCheck.KNOWN),
        ("db?.example.com", "db12.example.com", KeyCheck.UNKNOWN),
        ("web,db", "db", KeyCheck.KNOWN),
        ("DB.Example.com", "db.example.com", KeyCheck.KNOWN),
        ("*.example.com,!bad.example.com", "bad.example.com", KeyCheck.UNKNOWN),
        ("!bad.example.com,*.example.com", "bad.example.com", KeyCheck.UNKNOWN),
        ("*.example.com,!bad.example.com", "good.example.com", KeyCheck.KNOWN),
        ("!bad.example.com", "good.example.com", KeyCheck.UNKNOWN),
        ("[db]:22", "d", KeyCheck.UNKNOWN),
    ],
)
def test_patterns_wildcards_and_negation(
    tmp_path: Path, pattern: str, name: str, verdict: KeyCheck
) -> None:
    assert check(known(tmp_path, f"{pattern} ssh-ed25519 {KEY}"), name) is verdict


def test_hashed_entry_matches_only_its_name(tmp_path: Path) -> None:
    salt = b"0123456789abcdefghij"
    digest = hmac.new(salt, b"[127.0.0.1]:2222", hashlib.sha1).digest()
    line = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"
    hosts = known(tmp_path, f"{line} ssh-ed25519 {KEY}")
    assert check(hosts, "[127.0.0.1]:2222") is KeyCheck.KNOWN
    assert check(hosts, "[127.0.0.1]:2223") is KeyCheck.UNKNOWN


def test_a_different_key_of_the_same_type_is_a_changed_key(tmp_path: Path) -> None:
    hosts = known(tmp_path, f"db ssh-ed25519 {OTHER}")
    assert check(hosts, "db") is KeyCheck.CHANGED
    # A key of another type is merely unknown: the server may offer several.
    assert hosts.check("db", "ecdsa-sha2-nistp256", KEY) is KeyCheck.UNKNOWN


def test_revoked_key_is_revoked_for_every_host(tmp_path: Path) -> None:
    hosts = known(tmp_path, f"db ssh-ed25519 {KEY}", f"@revoked * ssh-ed25519 {KEY}")
    assert check(hosts, "db") is KeyCheck.REVOKED


def test_rsa_sha2_signatures_match_an_ssh_rsa_entry(tmp_path: Path) -> None:
    hosts = known(tmp_path, f"db ssh-rsa {KEY}")
    assert hosts.check("db", "rsa-sha2-512", KEY) is KeyCheck.KNOWN


def test_cert_authority_lines_and_junk_do_not_hide_later_entries(tmp_path: Path) -> None:
    hosts = known(
        tmp_path,
        "# comment",
        f"@cert-authority *.example.com ssh-ed25519 {OTHER}",
        "garbage",
        f"db ssh-ed25519 {KEY}",
    )
    assert check(hosts, "db") is KeyCheck.KNOWN


def test_several_files_are_one_set(tmp_path: Path) -> None:
    (tmp_path / "one").write_text(f"web ssh-ed25519 {KEY}\n")
    (tmp_path / "two").write_text(f"db ssh-ed25519 {KEY}\n")
    hosts = KnownHosts([str(tmp_path / "missing"), str(tmp_path / "one"), str(tmp_path / "two")])
    assert check(hosts, "db") is KeyCheck.KNOWN and check(hosts, "web") is KeyCheck.KNOWN


def test_add_records_the_key_once(tmp_path: Path) -> None:
    hosts = known(tmp_path)
    path = str(tmp_path / "known_hosts")
    hosts.add("[h]:2222", "ssh-ed25519", KEY, path)
    hosts.add("[h]:2222", "ssh-ed25519", KEY, path)
    assert Path(path).read_text() == f"[h]:2222 ssh-ed25519 {KEY}\n"
    assert check(KnownHosts([path]), "[h]:2222") is KeyCheck.KNOWN


def test_add_hashed_hides_the_name_and_still_matches(tmp_path: Path) -> None:
    path = str(tmp_path / "known_hosts")
    KnownHosts([]).add("[db.example.com]:2222", "ssh-ed25519", KEY, path, hashed=True)
    text = Path(path).read_text()
    assert text.startswith("|1|") and "db.example.com" not in text
    assert check(KnownHosts([path]), "[db.example.com]:2222") is KeyCheck.KNOWN
    assert check(KnownHosts([path]), "[db.example.com]:2223") is KeyCheck.UNKNOWN


def hashed(name: str, salt: bytes = b"0123456789abcdefghij") -> str:
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def ssh_keygen_finds(path: Path, name: str) -> bool:
    """Whether OpenSSH's own lookup (``ssh-keygen -F``) finds ``name`` in ``path``."""
    if shutil.which("ssh-keygen") is None:
        if IN_CI:
            pytest.fail("ssh-keygen (openssh-client) is needed in CI")
        pytest.skip("ssh-keygen is not installed (apt-get install openssh-client)")
    found = subprocess.run(
        ["ssh-keygen", "-F", name, "-f", str(path)], capture_output=True, text=True, timeout=30
    )
    return found.returncode == 0 and KEY in found.stdout


@pytest.mark.parametrize(
    "field", [f"{hashed('web')},db", f"db,{hashed('web')}", f"{hashed('web')},!bad", "!bad,db"]
)
def test_a_list_with_a_hashed_name_matches_as_openssh_reads_it(tmp_path: Path, field: str) -> None:
    # OpenSSH takes a field that starts with |1| as one whole hash, and a hash inside a
    # list as a literal name: so does platformctl, or it would accept a key ssh refuses.
    hosts = known(tmp_path, f"{field} ssh-ed25519 {KEY}")
    for name in ("web", "db", "bad"):
        openssh = ssh_keygen_finds(tmp_path / "known_hosts", name)
        assert (check(hosts, name) is KeyCheck.KNOWN) == openssh, name


@pytest.mark.parametrize(
    "pattern", ["|1|not base64!|AAAA", "|1|c2FsdA==", "|1|c2FsdA==|AAAA|extra", "|1|||"]
)
def test_a_malformed_hashed_pattern_matches_no_host(tmp_path: Path, pattern: str) -> None:
    hosts = known(tmp_path, f"{pattern} ssh-ed25519 {KEY}")
    assert check(hosts, "db") is check(hosts, "") is KeyCheck.UNKNOWN


def test_rsa_sha2_256_matches_an_ssh_rsa_entry_too(tmp_path: Path) -> None:
    hosts = known(tmp_path, f"db ssh-rsa {KEY}")
    assert hosts.check("db", "rsa-sha2-256", KEY) is KeyCheck.KNOWN


def test_blank_lines_bad_bytes_and_revocations_do_not_hide_later_entries(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_bytes(
        b"\n   \n# caf\xe9 \xff\xfe not UTF-8\n"
        + f"@revoked * ssh-ed25519 {OTHER}\n".encode()
        + f"db ssh-ed25519 {KEY}\n".encode()
    )
    hosts = KnownHosts([str(path)])
    assert check(hosts, "db") is KeyCheck.KNOWN
    assert check(hosts, "db", OTHER) is KeyCheck.REVOKED


def test_a_key_known_for_one_host_is_still_recorded_for_another(tmp_path: Path) -> None:
    # Cloned machines share a host key; each name needs its own line.
    hosts = known(tmp_path, f"web ssh-ed25519 {KEY}")
    path = tmp_path / "known_hosts"
    hosts.add("db", "ssh-ed25519", KEY, str(path))
    assert path.read_text() == f"web ssh-ed25519 {KEY}\ndb ssh-ed25519 {KEY}\n"
    # Remembered with its type: another key of that type for db is now a changed key.
    assert check(hosts, "db", OTHER) is KeyCheck.CHANGED
    assert hosts.known_types("db") == ["ssh-ed25519"]


def test_add_creates_a_private_file_in_a_private_folder(tmp_path: Path) -> None:
    path = tmp_path / "home" / ".ssh" / "known_hosts"
    KnownHosts([]).add("db", "rsa-sha2-512", KEY, str(path))
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == f"db ssh-rsa {KEY}\n"


def test_a_hashed_line_we_write_is_found_by_openssh(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    KnownHosts([]).add("[db.example.com]:2222", "ssh-ed25519", KEY, str(path), hashed=True)
    assert ssh_keygen_finds(path, "[db.example.com]:2222")
    assert not ssh_keygen_finds(path, "[db.example.com]:2223")


@pytest.mark.parametrize(
    ("verdict", "strict", "decision"),
    [
        (KeyCheck.KNOWN, "yes", KeyDecision.ACCEPT),
        (KeyCheck.UNKNOWN, "yes", KeyDecision.REFUSE),
        (KeyCheck.UNKNOWN, "accept-new", KeyDecision.RECORD),
        (KeyCheck.UNKNOWN, "no", KeyDecision.RECORD),
        (KeyCheck.CHANGED, "yes", KeyDecision.REFUSE),
        (KeyCheck.CHANGED, "accept-new", KeyDecision.REFUSE),
        (KeyCheck.CHANGED, "no", KeyDecision.ACCEPT),
        (KeyCheck.REVOKED, "yes", KeyDecision.REFUSE),
        (KeyCheck.REVOKED, "accept-new", KeyDecision.REFUSE),
        (KeyCheck.REVOKED, "no", KeyDecision.ACCEPT),
    ],
)
def test_strict_host_key_checking_policy(
    verdict: KeyCheck, strict: str, decision: KeyDecision
) -> None:
    assert host_key_decision(verdict, strict) is decision


def test_a_name_checked_before_its_key_was_added_is_known_after(tmp_path: Path) -> None:
    hosts = known(tmp_path, f"other ssh-ed25519 {KEY}")
    path = str(tmp_path / "known_hosts")
    assert check(hosts, "new") is KeyCheck.UNKNOWN
    assert hosts.known_types("new") == []
    hosts.add("new", "ssh-ed25519", KEY, path)  # accept-new, in the same run
    assert check(hosts, "new") is KeyCheck.KNOWN
    assert hosts.known_types("new") == ["ssh-ed25519"]


def _linear(lines: list[str], name: str) -> list[str]:
    """The key types of the lines matching ``name``, in file order: one line at a time."""
    from platformctl.collector.knownhosts import _Entry

    types = []
    for line in lines:
        patterns, key_type, _ = line.split()
        names = (patterns,) if patterns.startswith("|1|") else tuple(patterns.split(","))
        if _Entry(names, key_type, KEY).matches(name):
            types.append(key_type)
    return types


NAMES = ["web", "Web", "db", "db1", "[db]:2222", "x.example.com", "bad.example.com", "nope"]


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.lists(
                st.sampled_from(
                    [*NAMES, "*.example.com", "!bad.example.com", "db?", "*", "[db]:*", "WEB"]
                ),
                min_size=1,
                max_size=3,
            ),
            st.booleans(),
        ),
        max_size=8,
    ),
)
def test_the_index_finds_what_a_line_by_line_scan_finds(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[list[str], bool]]
) -> None:
    folder = tmp_path_factory.mktemp("kh")
    lines = []
    for i, (patterns, is_hashed) in enumerate(rows):
        field = hashed(patterns[0].lower()) if is_hashed else ",".join(patterns)
        lines.append(f"{field} type-{i} {KEY}")
    hosts = known(folder, *lines)
    for name in NAMES:
        assert hosts.known_types(name) == _linear(lines, name), name
