"""Fail early, with a message a user can act on, when the Java that pyspark 4 needs is missing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from common.errors import UserInputError

MIN_JAVA = 17


def java_executable() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = os.path.join(java_home, "bin", "java")
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("java")


def java_major_version(java: str) -> int | None:
    """`java -version` prints e.g. 'openjdk version "17.0.15"' (or "1.8.0_392" for Java 8) on stderr."""
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def java_version(java: str) -> str | None:
    """The full version `java -version` reports (e.g. "17.0.15"): the JVM's own `java.version` property."""
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    match = re.search(r'version "([^"]+)"', out.stderr + out.stdout)
    return match.group(1) if match else None


def require_java() -> str:
    java = java_executable()
    if java is None:
        raise UserInputError(
            f"Java {MIN_JAVA} or newer is required by Spark and was not found: no JAVA_HOME and no `java` on PATH. "
            "Install a JDK (e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME."
        )
    major = java_major_version(java)
    if major is None or major < MIN_JAVA:
        raise UserInputError(f"Spark needs Java {MIN_JAVA} or newer; {java} reports version {major or 'unknown'}.")
    return java


if __name__ == "__main__":  # `python -m common.java`: the Makefile's check
    import sys

    try:
        print(f"java: {require_java()} (version {java_major_version(java_executable())})")
    except UserInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
