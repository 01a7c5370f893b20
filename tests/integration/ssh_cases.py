"""The small ssh configs of the differential test: each one a thing users write.

A case is an ssh config (``{name}`` placeholders are filled per run: sshd ports ``{s1}``
``{s2}`` ``{s3}``, key paths ``{k1}`` ``{k2}`` ``{k3}`` ``{kx}`` ``{kenc}``, the case folder
``{dir}``, its copy of the lab known_hosts ``{kh}``, an empty one ``{none_known}``, the agent
socket ``{agent}``, a refused port ``{refused}`` and a silent one ``{silent}``), extra files
(same placeholders), and the alias to reach. Unless ``base`` is false, :data:`BASE` is appended:
a ``Host *`` block supplying what every case needs, so that the case's own lines come first
and win, as OpenSSH's first-value-wins rule makes them.

Keys k1..k3 and kenc (passphrase-protected, "k4") are authorized on every sshd, kx is not.
The agent holds k3 and kenc.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BASE = """
Host *
  HostName 127.0.0.1
  User root
  IdentityFile {k1}
  IdentitiesOnly yes
  UserKnownHostsFile {kh}
  GlobalKnownHostsFile none
"""


@dataclass(frozen=True)
class Case:
    """One config, the alias to reach, and where it comes from."""

    id: str
    config: str
    alias: str = "a"
    files: dict[str, str] = field(default_factory=dict)
    base: bool = True
    agent_env: bool = False
    """Run with ``SSH_AUTH_SOCK`` pointing at the test agent (both sides)."""


def _c(id: str, config: str, alias: str = "a", **kw: object) -> Case:
    return Case(id, config, alias, **kw)  # type: ignore[arg-type]


KH_S1 = "[127.0.0.1]:{s1} {hk1}\n"
EXEC_TRUE = "Match exec true\n  Port {s1}\n"

CASES: list[Case] = [
    # --- precedence, patterns, negation ------------------------------------------------
    _c("basic", "Host a\n  Port {s1}\n"),
    _c("first-value-wins", "Host a\n  Port {s1}\nHost a\n  Port {s2}\n"),
    _c("wildcard-first-wins", "Host *\n  Port {s2}\nHost a\n  Port {s1}\n"),
    _c("unknown-user", "Host a\n  Port {s1}\n  User nosuchuser\n"),
    _c("identityfile-accumulates", "Host a\n  Port {s1}\n  IdentityFile {kx}\n"),
    _c("identityfile-order", "Host a\n  Port {s1}\n  IdentityFile {k2}\n"),
    _c("several-patterns", "Host x a y\n  Port {s1}\n"),
    _c("star-pattern", "Host ab*\n  Port {s1}\n", alias="abc"),
    _c("question-pattern", "Host ?b\n  Port {s1}\n", alias="ab"),
    _c("negated-pattern", "Host * !a\n  Port {s2}\nHost a\n  Port {s1}\n"),
    _c("negation-alone-never-matches", "Host !b\n  Port {s2}\nHost *\n  Port {s1}\n"),
    _c("brackets-are-literal", "Host pf-[ab]\n  Port {s1}\nHost *\n  Port {s2}\n", alias="pf-a"),
    _c("alias-case", "Host a\n  Port {s1}\n", alias="A"),
    _c("hostname-localhost", "Host a\n  HostName localhost\n  Port {s1}\n"),
    _c(
        "hostname-localhost-known",
        "Host a\n  HostName localhost\n  Port {s1}\n  UserKnownHostsFile {dir}/kh_local\n",
        files={"kh_local": "[localhost]:{s1} {hk1}\n"},
    ),
    _c("hostname-token", "Host 1\n  HostName 127.0.0.%h\n  Port {s1}\n", alias="1"),
    _c("no-port-means-22", "Host a\n  User root\n"),
    # --- syntax --------------------------------------------------------------------------
    _c("equals", "Host a\n  Port={s1}\n"),
    _c("equals-spaced", "Host a\n  Port = {s1}\n"),
    _c("keyword-case", "host a\n  PORT {s1}\n  hOsTnAmE 127.0.0.1\n"),
    _c("quoted-value", 'Host a\n  Port "{s1}"\n'),
    _c("trailing-comment-port", "Host a\n  Port {s1} # lab\n"),
    _c("trailing-comment-user", "Host a\n  Port {s1}\n  User root # admin\n"),
    _c("service-name-port", "Host a\n  Port ssh\n"),
    _c("tabs", "Host\ta\n\tPort\t{s1}\n"),
    _c("comments-and-blanks", "# a comment\n\nHost a\n\n  # inside\n  Port {s1}\n\n"),
    _c("bad-option", "Host a\n  Port {s1}\n  Bogus yes\n"),
    _c("ignore-unknown", "IgnoreUnknown Bogus\nHost a\n  Port {s1}\n  Bogus yes\n"),
    _c("global-before-host", "Port {s1}\nHost a\n  Port {s2}\n"),
    # --- Match -------------------------------------------------------------------------
    _c("match-host", "Match host a\n  Port {s1}\n"),
    _c(
        "match-host-after-hostname",
        "Host a\n  HostName 127.0.0.1\nMatch host 127.0.0.1\n  Port {s1}\n",
    ),
    _c("match-originalhost", "Host a\n  HostName 127.0.0.1\nMatch originalhost a\n  Port {s1}\n"),
    _c("match-originalhost-other", "Match originalhost b\n  Port {s2}\nHost *\n  Port {s1}\n"),
    _c("match-user", "Host a\n  User root\nMatch user root\n  Port {s1}\n"),
    _c("match-localuser", "Match localuser root\n  Port {s1}\n"),
    _c("match-localuser-other", "Match localuser nobody\n  Port {s2}\nHost *\n  Port {s1}\n"),
    _c("match-exec-true", EXEC_TRUE),
    _c("match-exec-false", "Match exec false\n  Port {s2}\nHost *\n  Port {s1}\n"),
    _c("match-exec-token-n", 'Match exec "test %n = a"\n  Port {s1}\n'),
    _c(
        "match-exec-token-h",
        'Host a\n  HostName 127.0.0.1\nMatch exec "test %h = 127.0.0.1"\n  Port {s1}\n',
    ),
    _c("match-exec-percent", 'Match exec "printf %%s x | grep -q x"\n  Port {s1}\n'),
    _c("match-all", "Match all\n  Port {s1}\n"),
    _c("match-negated", "Match !host b\n  Port {s1}\n"),
    _c("match-two-criteria", "Match host a user root\n  Port {s1}\n"),
    _c("match-host-list", "Match host b,a\n  Port {s1}\n"),
    _c(
        "match-canonical",
        "CanonicalizeHostname yes\nCanonicalDomains invalid\nHost a\n  HostName 127.0.0.1\n"
        "Match canonical\n  Port {s1}\nHost *\n  Port {s2}\n",
    ),
    _c("match-final", "Match final\n  Port {s1}\nHost *\n  Port {s2}\n"),
    _c("match-final-host", "Match final host a\n  Port {s1}\nHost *\n  Port {s2}\n"),
    # --- tokens --------------------------------------------------------------------------
    _c(
        "identityfile-n",
        "Host a\n  Port {s1}\n  IdentityFile {dir}/id_%n\n",
        files={"id_a": "copy:k2"},
    ),
    _c(
        "identityfile-p",
        "Host a\n  Port {s1}\n  IdentityFile {dir}/id_%p\n",
        files={"id_{s1}": "copy:k2"},
    ),
    _c(
        "identityfile-h",
        "Host a\n  Port {s1}\n  IdentityFile {dir}/id_%h\n",
        files={"id_127.0.0.1": "copy:k2"},
    ),
    _c(
        "identityfile-r",
        "Host a\n  Port {s1}\n  IdentityFile {dir}/id_%r\n",
        files={"id_root": "copy:k2"},
    ),
    _c(
        "identityfile-u",
        "Host a\n  Port {s1}\n  IdentityFile {dir}/id_%u\n",
        files={"id_root": "copy:k2"},
    ),
    _c(
        "identityfile-i",
        "Host a\n  Port {s1}\n  IdentityFile {dir}/id_%i\n",
        files={"id_0": "copy:k2"},
    ),
    _c(
        "identityfile-percent",
        "Host a\n  Port {s1}\n  IdentityFile {dir}/k%%2\n",
        files={"k%2": "copy:k2"},
    ),
    _c("identityfile-env", "Host a\n  Port {s1}\n  IdentityFile ${{PCTL_DIFF_KEYS}}/k2\n"),
    _c(
        "knownhosts-k",
        "Host a\n  Port {s1}\n  UserKnownHostsFile {dir}/kh.d/%k\n",
        files={"kh.d/a": KH_S1},
    ),
    _c(
        "knownhosts-h",
        "Host a\n  Port {s1}\n  UserKnownHostsFile {dir}/kh_%h\n",
        files={"kh_127.0.0.1": KH_S1},
    ),
    _c(
        "knownhosts-n",
        "Host a\n  Port {s1}\n  UserKnownHostsFile {dir}/kh_%n\n",
        files={"kh_a": KH_S1},
    ),
    _c(
        "knownhosts-quoted-space",
        'Host a\n  Port {s1}\n  UserKnownHostsFile "{dir}/known hosts"\n',
        files={"known hosts": KH_S1},
    ),
    _c("knownhosts-tilde-missing", "Host a\n  Port {s1}\n  UserKnownHostsFile ~/.pctl-none\n"),
    # --- Include ------------------------------------------------------------------------
    _c("include-absolute", "Include {dir}/inc.conf\n", files={"inc.conf": "Host a\n  Port {s1}\n"}),
    _c(
        "include-glob-sorted",
        "Include {dir}/conf.d/*.conf\n",
        files={"conf.d/b.conf": "Host a\n  Port {s2}\n", "conf.d/a.conf": "Host a\n  Port {s1}\n"},
    ),
    _c(
        "include-relative-is-dot-ssh",
        "Include inc.conf\nHost *\n  Port {s2}\n",
        files={"inc.conf": "Host a\n  Port {s1}\n"},
    ),
    _c(
        "include-nested",
        "Include {dir}/one.conf\n",
        files={"one.conf": "Include {dir}/two.conf\n", "two.conf": "Host a\n  Port {s1}\n"},
    ),
    _c(
        "include-in-matching-host",
        "Host a\n  Include {dir}/p.conf\n",
        files={"p.conf": "Port {s1}\n"},
    ),
    _c(
        "include-in-other-host",
        "Host b\n  Include {dir}/p.conf\nHost *\n  Port {s1}\n",
        files={"p.conf": "Host *\n  Port {s2}\n"},
    ),
    _c(
        "include-then-global",
        "Include {dir}/vendor.conf\nPort {s1}\n",
        files={"vendor.conf": "Host orb\n  Port {s3}\n"},
    ),
    _c(
        "include-in-match",
        "Match host a\n  Include {dir}/p.conf\n",
        files={"p.conf": "Port {s1}\n"},
    ),
    _c(
        "include-quoted-space",
        'Include "{dir}/with space.conf"\n',
        files={"with space.conf": "Host a\n  Port {s1}\n"},
    ),
    _c("include-missing", "Include {dir}/nope.conf\nHost a\n  Port {s1}\n"),
    _c("include-tilde-missing", "Include ~/.pctl-none/*.conf\nHost a\n  Port {s1}\n"),
    # --- known_hosts ---------------------------------------------------------------------
    _c(
        "global-known-hosts",
        "Host a\n  Port {s1}\n  UserKnownHostsFile {none_known}\n  GlobalKnownHostsFile {kh}\n",
    ),
    _c("several-user-files", "Host a\n  Port {s1}\n  UserKnownHostsFile {none_known} {kh}\n"),
    _c(
        "hashed",
        "Host a\n  Port {s1}\n  UserKnownHostsFile {dir}/hashed\n",
        files={"hashed": "copy:hashed"},
    ),
    _c(
        "hostkeyalias",
        "Host a\n  Port {s1}\n  HostKeyAlias lab-a\n  UserKnownHostsFile {dir}/kh\n",
        files={"kh": "lab-a {hk1}\n"},
    ),
    _c(
        "hostkeyalias-address-entry-only",
        "Host a\n  Port {s1}\n  HostKeyAlias lab-a\n  UserKnownHostsFile {dir}/kh\n",
        files={"kh": KH_S1},
    ),
    _c(
        "knownhosts-star",
        "Host a\n  Port {s1}\n  UserKnownHostsFile {dir}/kh\n",
        files={"kh": "[127.0.0.*]:{s1} {hk1}\n"},
    ),
    _c(
        "knownhosts-question",
        "Host a\n  Port {s1}\n  UserKnownHostsFile {dir}/kh\n",
        files={"kh": "[127.0.0.?]:{s1} {hk1}\n"},
    ),
    _c(
        "knownhosts-negated",
        "Host a\n  Port {s1}\n  UserKnownHostsFile {dir}/kh\n",
        files={"kh": "![127.0.0.1]:{s1},[127.0.0.*]:{s1} {hk1}\n"},
    ),
    _c(
        "changed-key",
        "Host a\n  Port {s1}\n  UserKnownHostsFile {dir}/kh\n",
        files={"kh": "[127.0.0.1]:{s1} {hk2}\n"},
    ),
    _c(
        "changed-key-strict-no",
        "Host a\n  Port {s1}\n  UserKnownHostsFile {dir}/kh\n  StrictHostKeyChecking no\n",
        files={"kh": "[127.0.0.1]:{s1} {hk2}\n"},
    ),
    _c(
        "unknown-key-strict-no",
        "Host a\n  Port {s1}\n  UserKnownHostsFile {dir}/kh\n  StrictHostKeyChecking no\n",
    ),
    _c(
        "unknown-key-accept-new",
        "Host a\n  Port {s1}\n  UserKnownHostsFile {dir}/kh\n  StrictHostKeyChecking accept-new\n",
    ),
    _c(
        "unknown-key-strict-yes",
        "Host a\n  Port {s1}\n  UserKnownHostsFile {dir}/kh\n  StrictHostKeyChecking yes\n",
    ),
    _c("unknown-key-ask", "Host a\n  Port {s1}\n  UserKnownHostsFile {dir}/kh\n"),
    _c(
        "revoked-despite-strict-no",
        "Host a\n  Port {s1}\n  StrictHostKeyChecking no\n"
        "  UserKnownHostsFile {dir}/revoked {kh}\n",
        files={"revoked": "@revoked * {hk1}\n"},
    ),
    _c(
        "checkhostip",
        "Host a\n  HostName localhost\n  Port {s1}\n  CheckHostIP yes\n"
        "  UserKnownHostsFile {dir}/kh\n",
        files={"kh": "[localhost]:{s1} {hk1}\n"},
    ),
    # --- ProxyJump ----------------------------------------------------------------------
    _c("jump", "Host a\n  Port {s1}\n  ProxyJump b\nHost b\n  Port {s2}\n"),
    _c(
        "jump-chain",
        "Host a\n  Port {s1}\n  ProxyJump b,c\nHost b\n  Port {s2}\nHost c\n  Port {s3}\n",
    ),
    _c(
        "jump-bastion-own-jump",
        "Host a\n  Port {s1}\n  ProxyJump b\nHost b\n  Port {s2}\n  ProxyJump dead\n"
        "Host dead\n  Port {refused}\n",
    ),
    _c(
        "jump-chain-first-hop-own-jump",
        "Host a\n  Port {s1}\n  ProxyJump b,c\nHost b\n  Port {s2}\n  ProxyJump dead\n"
        "Host c\n  Port {s3}\nHost dead\n  Port {refused}\n",
    ),
    _c(
        "jump-chain-later-hop-own-jump-overridden",
        "Host a\n  Port {s1}\n  ProxyJump b,c\nHost b\n  Port {s2}\nHost c\n  Port {s3}\n"
        "  ProxyJump dead\nHost dead\n  Port {refused}\n",
    ),
    _c(
        "jump-bastion-via-bastion",
        "Host a\n  Port {s1}\n  ProxyJump b\nHost b\n  Port {s2}\n  ProxyJump c\n"
        "Host c\n  Port {s3}\n",
    ),
    _c(
        "jump-none",
        "Host a\n  Port {s1}\n  ProxyJump none\nHost *\n  ProxyJump dead\n"
        "Host dead\n  Port {refused}\n",
    ),
    _c(
        "proxycommand-none-beats-wildcard-jump",
        "Host a\n  Port {s1}\n  ProxyCommand none\nHost * !dead\n  ProxyJump dead\n"
        "Host dead\n  Port {refused}\n",
    ),
    _c("jump-spec-user-port", "Host a\n  Port {s1}\n  ProxyJump root@127.0.0.1:{s2}\n"),
    _c("jump-spec-uri", "Host a\n  Port {s1}\n  ProxyJump ssh://root@127.0.0.1:{s2}\n"),
    _c("jump-wrong-user", "Host a\n  Port {s1}\n  ProxyJump nosuchuser@b\nHost b\n  Port {s2}\n"),
    _c("jump-refused", "Host a\n  Port {s1}\n  ProxyJump dead\nHost dead\n  Port {refused}\n"),
    _c(
        "jump-wildcard-except-bastion",
        "Host a\n  Port {s1}\nHost b\n  Port {s2}\nHost * !b\n  ProxyJump b\n",
    ),
    _c(
        "jump-target-unreachable-from-bastion",
        "Host a\n  Port {refused}\n  ProxyJump b\nHost b\n  Port {s2}\n",
    ),
    # --- ProxyCommand -------------------------------------------------------------------
    _c("proxycommand-nc", "Host a\n  Port {s1}\n  ProxyCommand busybox nc %h %p\n"),
    _c("proxycommand-literal", "Host a\n  ProxyCommand busybox nc 127.0.0.1 {s1}\n  Port {s1}\n"),
    _c(
        "proxycommand-fails",
        'Host a\n  Port {s1}\n  ProxyCommand sh -c "echo broken >&2; exit 3"\n',
    ),
    _c(
        "proxycommand-ssh-w",
        "Host a\n  Port {s1}\n  ProxyCommand ssh -F {dir}/config -o BatchMode=yes -W %h:%p b\n"
        "Host b\n  Port {s2}\n",
    ),
    _c(
        "proxycommand-before-jump",
        "Host a\n  Port {s1}\n  ProxyCommand busybox nc %h %p\n  ProxyJump dead\n",
    ),
    _c(
        "jump-before-proxycommand",
        "Host a\n  Port {s1}\n  ProxyJump b\n  ProxyCommand false\nHost b\n  Port {s2}\n",
    ),
    _c(
        "proxycommand-shell-syntax",
        "Host a\n  Port {s1}\n  ProxyCommand exec busybox nc %h %p 2>/dev/null\n",
    ),
    # --- agent and identities -------------------------------------------------------------
    _c(
        "agent-socket",
        "Host a\n  Port {s1}\n  IdentityAgent {agent}\n  IdentitiesOnly no\n  IdentityFile {kx}\n",
    ),
    _c(
        "agent-socket-identitiesonly",
        "Host a\n  Port {s1}\n  IdentityAgent {agent}\n  IdentityFile {kx}\n",
    ),
    _c(
        "agent-pub-only-identitiesonly",
        "Host a\n  Port {s1}\n  IdentityAgent {agent}\n  IdentityFile {dir}/k3only\n",
        files={"k3only.pub": "copy:k3.pub"},
    ),
    _c(
        "agent-encrypted-key",
        "Host a\n  Port {s1}\n  IdentityAgent {agent}\n  IdentityFile {kenc}\n",
    ),
    _c(
        "encrypted-key-no-agent",
        "Host a\n  Port {s1}\n  IdentityAgent none\n  IdentityFile {kenc}\n",
    ),
    _c(
        "agent-env-var-form",
        "Host a\n  Port {s1}\n  IdentityAgent $PCTL_DIFF_AGENT\n  IdentitiesOnly no\n",
    ),
    _c(
        "agent-none-despite-env",
        "Host a\n  Port {s1}\n  IdentityAgent none\n  IdentitiesOnly no\n",
        agent_env=True,
    ),
    _c(
        "agent-from-environment",
        "Host a\n  Port {s1}\n  IdentitiesOnly no\n",
        agent_env=True,
    ),
    _c(
        "agent-ssh-auth-sock-keyword",
        "Host a\n  Port {s1}\n  IdentityAgent SSH_AUTH_SOCK\n  IdentitiesOnly no\n",
        agent_env=True,
    ),
    _c("identitiesonly-ignores-env-agent", "Host a\n  Port {s1}\n", agent_env=True),
    _c(
        "no-usable-key",
        "Host a\n  HostName 127.0.0.1\n  Port {s1}\n  User root\n  IdentityFile {kx}\n"
        "  IdentitiesOnly yes\n  UserKnownHostsFile {kh}\n  GlobalKnownHostsFile none\n",
        base=False,
    ),
    # --- ConnectTimeout -----------------------------------------------------------------
    _c("connecttimeout-silent", "Host a\n  Port {silent}\n  ConnectTimeout 1\n"),
    _c("connecttimeout-ok", "Host a\n  Port {s1}\n  ConnectTimeout 2\n"),
    _c("refused", "Host a\n  Port {refused}\n"),
    # --- canonicalization ---------------------------------------------------------------
    _c(
        "canonicalize-with-hostname",
        "CanonicalizeHostname yes\nCanonicalDomains invalid\n"
        "Host a\n  HostName 127.0.0.1\n  Port {s1}\n",
    ),
    _c(
        "canonicalize-always",
        "CanonicalizeHostname always\nCanonicalDomains invalid\n"
        "Host a\n  HostName 127.0.0.1\n  Port {s1}\n",
    ),
    _c(
        "canonicalize-no-fallback",
        "CanonicalizeHostname yes\nCanonicalDomains invalid\nCanonicalizeFallbackLocal no\n"
        "Host a\n  HostName localhost\n  Port {s1}\n",
    ),
    _c(
        "canonicalize-final-host-pattern",
        "CanonicalizeHostname yes\nCanonicalDomains invalid\nHost a\n  HostName 127.0.0.1\n"
        "Host 127.0.0.1\n  Port {s1}\nHost *\n  Port {s2}\n",
    ),
]
