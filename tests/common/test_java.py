import os
import stat

import pytest

from common.errors import UserInputError
from common.java import require_java


def test_java_17_is_found_on_this_machine():
    assert os.access(require_java(), os.X_OK)


def test_missing_java_gives_an_actionable_message(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserInputError, match=r"Java 17 or newer is required.*JAVA_HOME"):
        require_java()


def test_too_old_java_is_refused(monkeypatch, tmp_path):
    fake = tmp_path / "bin" / "java"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'java version \"1.8.0_392\"' >&2\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(UserInputError, match="needs Java 17 or newer.*version 8"):
        require_java()
