"""Where a process's CPU went: its cProfile stats, by package and function.

Waiting (``epoll``) and importing are left out: they are not work done per
message. What is left is split by the package whose code ran, so that the
share of the bus client, the WebSocket library, the event loop and the
gateway's own code can be read at a glance.
"""

import pstats
from collections import Counter
from pathlib import Path

# Built-ins that are idle time or import time, not work per message.
IDLE = ("poll' of 'select.epoll", "builtins.compile", "builtins.exec", "marshal")
# The package a file belongs to, by the first marker its path holds.
PACKAGES = (
    ("/aio_pika/", "aio-pika / aiormq / pamqp (bus client)"),
    ("/aiormq/", "aio-pika / aiormq / pamqp (bus client)"),
    ("/pamqp/", "aio-pika / aiormq / pamqp (bus client)"),
    ("/asyncio/", "asyncio event loop"),
    ("/pydantic", "pydantic"),
    ("importlib", "imports at start-up"),
    ("<frozen", "imports at start-up"),
)
# moov.olt's own packages sit in the directory above this one's package.
ROOT = str(Path(__file__).resolve().parents[2]) + "/"
SOCKET = "socket send/recv (kernel)"
# Packages under this share of the CPU are summed on one line.
SMALL = 0.005


# Built-in functions, by a marker of their name.
BUILT_INS = (
    ("_socket.socket", SOCKET),
    ("pydantic_core", "pydantic"),
    ("_asyncio", "asyncio event loop"),
    ("_contextvars", "asyncio event loop"),
    ("_queue", "asyncio event loop"),
)


def _package(filename: str, function: str) -> str:
    if filename == "~":
        for marker, name in BUILT_INS:
            if marker in function:
                return name
        return "other built-ins"
    for marker, name in PACKAGES:
        if marker in filename:
            return name
    if "/site-packages/" in filename:
        return filename.split("/site-packages/", 1)[1].split("/", 1)[0]
    if "/lib/python3" in filename:
        return "Python standard library"
    if filename.startswith(ROOT) and "/" in filename.removeprefix(ROOT):
        return f"moov.olt: {filename.removeprefix(ROOT).split('/', 1)[0]}"
    return "other Python"


def breakdown(stats_files: list[Path], top: int = 20) -> str:
    """Return the CPU of cProfile runs by package, then their hottest functions.

    Args:
        stats_files: what ``python -m cProfile -o`` wrote, one or more runs.
        top: how many functions to list.
    """
    stats = pstats.Stats(*(str(path) for path in stats_files))
    raw = stats.stats  # type: ignore[attr-defined]
    by_package: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    for (filename, line, function), (_, _, own, _, _) in raw.items():
        label = f"{filename}:{line}({function})"
        if any(idle in label for idle in IDLE):
            continue
        package = _package(filename, function)
        if package == "imports at start-up":
            continue
        by_package[package] += own
        short = filename.rsplit("/", 1)[-1]
        by_function[f"{short}:{line}({function})"] += own
    total = sum(by_package.values()) or 1.0
    lines = [f"CPU in the process, waiting and imports left out: {total:.2f} s", ""]
    lines += ["| package | seconds | share |", "|---|---:|---:|"]
    rest = 0.0
    for package, seconds in by_package.most_common():
        if seconds / total < SMALL:
            rest += seconds
        else:
            lines.append(f"| {package} | {seconds:.2f} | {seconds / total:.0%} |")
    if rest:
        lines.append(f"| everything else | {rest:.2f} | {rest / total:.0%} |")
    lines += ["", "| function (own time) | seconds | share |", "|---|---:|---:|"]
    for function, seconds in by_function.most_common(top):
        lines.append(f"| {function} | {seconds:.2f} | {seconds / total:.1%} |")
    return "\n".join(lines)
