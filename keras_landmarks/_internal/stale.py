"""Temporary files a kill leaves behind, and their removal on the next run.

Every temporary name that can outlive its writer carries the writer's pid
(``<base>.tmp-<pid>...``); ``remove_stale(folder, regex)`` deletes the entries of ``folder``
whose name matches ``regex`` (its first group: the pid) and whose process is gone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (this process counts as gone: its writes are synchronous,
    so what it left outside one is stale)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.EPERM
    return True


def remove_stale(folder: str, pattern: str) -> list[str]:
    """Delete entries of ``folder`` matching ``pattern`` (group 1 = pid) of dead processes;
    returns their names."""
    if not os.path.isdir(folder):
        return []
    removed = []
    for name in os.listdir(folder):
        m = re.fullmatch(pattern, name)
        if m and not pid_alive(int(m.group(1))):
            path = os.path.join(folder, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
            removed.append(name)
    return removed
