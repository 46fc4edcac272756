"""The README's console transcripts are run as written (only the ports are the
test server's) and must print what the README shows."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BIN = Path(sys.executable).parent


def transcripts() -> list[list[tuple[str, list[str]]]]:
    """Each ```console block as [(command, expected output lines)]."""
    blocks = re.findall(r"```console\n(.*?)```", README.read_text(), re.S)
    found = []
    for block in blocks:
        steps: list[tuple[str, list[str]]] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif steps:
                steps[-1][1].append(line)
        found.append(steps)
    return found


def localised(command: str, server) -> str:
    """The command with the README's ports replaced by the test server's."""
    listeners = server.app.runtime.listeners
    mapping = {"4566": server.endpoint.rsplit(":", 1)[1],
               "8443": listeners["mqtt-alpn"].rsplit(":", 1)[1],
               "8883": listeners["iot:Data-ATS"].rsplit(":", 1)[1]}
    return re.sub(r"(localhost:|-p )(4566|8443|8883)\b", lambda m: m.group(1) + mapping[m.group(2)], command)


def run(steps, server, folder: Path) -> list[tuple[str, int, list[str]]]:
    """One bash session (exports carry over); per command its exit code and output lines."""
    script = []
    for i, (command, _) in enumerate(steps):
        script += [f"echo '@@step {i}'", localised(command, server), "echo \"@@rc $?\""]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=300)
    results, output, current = [], [], None
    for line in done.stdout.splitlines():
        if line.startswith("@@step "):
            current, output = int(line.split()[1]), []
        elif line.startswith("@@rc "):
            results.append((steps[current][0], int(line.split()[1]), output))
        else:
            output.append(line)
    assert len(results) == len(steps), done.stderr
    return results


def test_readme_has_transcripts():
    assert transcripts(), "README.md has no ```console transcript"


@pytest.mark.parametrize("index", range(len(transcripts())))
def test_readme_transcript(localiot_server, tmp_path, index):
    steps = transcripts()[index]
    for (command, rc, output), (_, expected) in zip(run(steps, localiot_server, tmp_path), steps):
        assert rc == 0, f"{command!r} exited {rc}"
        assert output == expected, f"{command!r} printed {output!r}"
