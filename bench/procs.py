"""Processes and the machine, for the bench scripts: free ports, a process's CPU
seconds and RSS from /proc, the machine's busy share, the open-files limit,
waiting for a port, stopping a process group, and progress lines on stderr."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time


HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.path.dirname(sys.executable)

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def proc_cpu(pid: int) -> float:
    """CPU seconds (user+system, all threads) a process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / CLK_TCK


def machine_busy() -> float:
    """CPU seconds all cores spent not idle so far (includes interrupts and softirqs)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK


def proc_rss(pid: int) -> int:
    """Resident set size in bytes."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def raise_nofile(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        log(f"RLIMIT_NOFILE raised from {soft} to {hard} (inherited by both brokers and the generator)")
    if hard < needed and os.geteuid() == 0:  # root may raise the hard limit (up to fs.nr_open)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            log(f"RLIMIT_NOFILE hard limit raised from {hard} to {needed} (root)")
            hard = needed
        except (ValueError, OSError) as e:
            log(f"could not raise RLIMIT_NOFILE to {needed}: {e}")
    if hard < needed:
        log(f"warning: RLIMIT_NOFILE hard limit {hard} < {needed} needed; raise it (ulimit -Hn) as root")
    return hard


def wait_port(port: int, proc: subprocess.Popen, name: str, log_path: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode}; see {log_path}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{name} did not open port {port}; see {log_path}")


def stop_process(proc: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
