"""One server per data directory: two processes on one SQLite file would both
run and silently drift apart (a certificate deactivated through one would not
disconnect devices on the other). The lock is an advisory `flock` on
`<data dir>/localiot.lock`, released by the kernel when the process ends, even
by SIGKILL, so a restart after a crash never finds a stale lock."""

from __future__ import annotations

import os


class DataDirectoryInUse(RuntimeError):
    pass


class DataDirectoryLock:
    def __init__(self, data_dir: str):
        self.path = os.path.join(os.path.abspath(data_dir), "localiot.lock")
        self._fd: int | None = None

    def acquire(self) -> "DataDirectoryLock":
        import fcntl

        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise DataDirectoryInUse(
                f"the data directory {os.path.dirname(self.path)} is in use by localiot (pid {holder}); "
                "stop that server or start this one with another --data-dir (LOCALIOT_DATA_DIR)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
