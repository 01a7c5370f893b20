"""The lab's start-up failures say which component failed, and whether it is missing or broken:
a broken dockerd must not read like a package to install."""

from __future__ import annotations

import pytest

from tests.lab import lab as lab_module
from tests.lab.lab import LabUnavailable, check_components, wait_for


def test_a_missing_component_is_named_as_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(lab_module.REQUIRED, "frobd", "/nonexistent/frobd")
    with pytest.raises(LabUnavailable) as err:
        check_components()
    assert err.value.missing and "frobd" in err.value.component
    assert err.value.skip_reason().startswith("lab not installed (") and "frobd" in str(err.value)


def test_a_component_that_does_not_come_up_is_named_as_failed() -> None:
    with pytest.raises(LabUnavailable) as err:
        wait_for(lambda: False, 0.2, "dockerd alpha")
    assert not err.value.missing
    assert err.value.skip_reason() == (
        "lab component dockerd alpha failed to start: dockerd alpha did not come up within 0.2s"
    )
