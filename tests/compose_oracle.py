"""Oracle: ask the real docker-compose (Debian's 1.29, run by the system python3) how it reads
compose stacks and ``.env`` files. Run by tests/test_compose_differential.py, never imported.

``stacks``: one JSON request per line on stdin (a stack folder); for each, one JSON line with
what ``docker-compose config`` prints for it (every service's image, None for a build-only
service) and the project name compose gives it, or compose's error.
``env``: one JSON request per line (a ``.env`` path); for each, compose's parse of it.

Each stack runs through compose's own command-line entry point (``docker-compose config``)
inside this process, with the stack folder as the working directory, so one process serves
a whole corpus. Start it with a clean environment (``env -i PATH=...``): compose reads the
caller's environment, and the differential test must not depend on who runs it.
"""

import contextlib
import io
import json
import os
import sys


def _compose_main():
    from importlib.metadata import distribution

    (entry,) = [
        e
        for e in distribution("docker-compose").entry_points
        if e.group == "console_scripts" and e.name == "docker-compose"
    ]
    return entry.load()


def _unescape(image):
    # `config` prints a literal $ as $$ so its output stays valid compose input.
    return image.replace("$$", "$") if isinstance(image, str) else image


def read_stack(main, folder):
    import yaml
    from compose.cli.command import get_project_name

    os.chdir(folder)
    sys.argv = ["docker-compose", "config"]
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    if code:
        return {"error": err.getvalue().strip() or f"exit {code}"}
    config = yaml.safe_load(out.getvalue()) or {}
    images = {
        name: _unescape((spec or {}).get("image"))
        for name, spec in (config.get("services") or {}).items()
    }
    try:
        project = get_project_name(folder)
    except Exception as exc:  # noqa: BLE001 - compose's own failure is the answer
        return {"error": f"project name: {exc}"}
    return {"images": images, "project": project}


def read_env(path):
    from compose.config.environment import env_vars_from_file

    with contextlib.redirect_stderr(io.StringIO()):
        try:
            values = env_vars_from_file(path)
        except Exception as exc:  # noqa: BLE001
            return {"error": str(exc)}
    return {"values": {k: v for k, v in values.items() if v is not None}}


def main():
    mode = sys.argv[1]
    compose_main = _compose_main() if mode == "stacks" else None
    for line in sys.stdin:
        request = json.loads(line)
        answer = read_stack(compose_main, request) if mode == "stacks" else read_env(request)
        sys.__stdout__.write(json.dumps(answer) + "\n")
        sys.__stdout__.flush()


if __name__ == "__main__":
    main()
