"""Debian packages the team stack (and its browser test) needs: installed with apt-get when missing and we are
root, otherwise named for the user to install."""

from __future__ import annotations

import os
import shutil
import subprocess

from lifecycle.team.processes import StackError


def can_install() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def install_debian_package(package: str) -> None:
    if not can_install():
        raise StackError(f"the Debian package `{package}` is missing: install it (sudo apt-get install {package})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise StackError(f"`{' '.join(command)}` failed:\n{done.stderr[-2000:]}")
