"""AWS managed job templates, as data.

The documents and parameters are the ones the AWS IoT developer guide
publishes ("Managed template remote actions and job documents"): every
template runs a handler of the AWS IoT Device Client's sample job handlers,
and all take the optional runAsUser and pathToHandler parameters.
Templates are addressed as `arn:aws:iot:{region}::jobtemplate/{name}:{version}`.
"""

from __future__ import annotations

import json

VERSION = "1.0"
ENVIRONMENTS = ["LINUX"]

_COMMON = [
    {"key": "runAsUser", "description": "Optional. The user to run the job handler as; by default the "
     "handler runs as the same user as the Device Client.", "regex": "(.){0,256}",
     "example": "user1", "optional": True},
    {"key": "pathToHandler", "description": "Optional. The path to the job handler on the device; by default "
     "the Device Client's current working directory.", "regex": "(.){0,4096}",
     "example": "/home/user/jobs/handlers", "optional": True},
]

_PACKAGES = {"regex": "[a-zA-Z0-9][a-zA-Z0-9 ._+:~-]{0,1023}", "optional": False}


def _document(action: str, handler: str, args: list[str] | None) -> str:
    step_input: dict = {"handler": handler}
    if args is not None:
        step_input["args"] = args
    step_input["path"] = "${aws:iot:parameter:pathToHandler}"
    return json.dumps({
        "version": "1.0",
        "steps": [{"action": {"name": action, "type": "runHandler", "input": step_input,
                              "runAsUser": "${aws:iot:parameter:runAsUser}"}}],
    }, indent=2)


def _services(verb: str) -> dict:
    return dict(_PACKAGES, key="services",
                description=f"A space-separated list of one or more services to be {verb}.",
                example="ssh rsyslog")


TEMPLATES: dict[str, dict] = {
    "AWS-Download-File": {
        "description": "A managed template provided by AWS for downloading a file.",
        "document": _document("Download-File", "download-file.sh",
                              ["${aws:iot:parameter:downloadUrl}", "${aws:iot:parameter:filePath}"]),
        "documentParameters": [
            {"key": "downloadUrl", "description": "The URL to download the file from: an internet resource, "
             "a public S3 object or an S3 object reached through a presigned URL.",
             "regex": "(.){1,1024}", "example": "http://www.example.com/index.html", "optional": False},
            {"key": "filePath", "description": "A local file path on the device to store the downloaded file.",
             "regex": "(.){1,4096}", "example": "path/to/file", "optional": False},
        ],
    },
    "AWS-Install-Application": {
        "description": "A managed template provided by AWS for installing one or more applications.",
        "document": _document("Install-Application", "install-packages.sh", ["${aws:iot:parameter:packages}"]),
        "documentParameters": [dict(_PACKAGES, key="packages", example="nano vim",
                                    description="A space-separated list of one or more applications to be installed.")],
    },
    "AWS-Reboot": {
        "description": "A managed template provided by AWS for rebooting your device.",
        "document": _document("Reboot", "reboot.sh", None),
        "documentParameters": [],
    },
    "AWS-Remove-Application": {
        "description": "A managed template provided by AWS for uninstalling one or more applications.",
        "document": _document("Remove-Application", "remove-packages.sh", ["${aws:iot:parameter:packages}"]),
        "documentParameters": [dict(_PACKAGES, key="packages", example="nano vim",
                                    description="A space-separated list of one or more applications to be uninstalled.")],
    },
    "AWS-Restart-Application": {
        "description": "A managed template provided by AWS for stopping and restarting one or more services.",
        "document": _document("Restart-Application", "restart-services.sh", ["${aws:iot:parameter:services}"]),
        "documentParameters": [_services("restarted")],
    },
    "AWS-Start-Application": {
        "description": "A managed template provided by AWS for starting one or more services.",
        "document": _document("Start-Application", "start-services.sh", ["${aws:iot:parameter:services}"]),
        "documentParameters": [_services("started")],
    },
    "AWS-Stop-Application": {
        "description": "A managed template provided by AWS for stopping one or more services.",
        "document": _document("Stop-Application", "stop-services.sh", ["${aws:iot:parameter:services}"]),
        "documentParameters": [_services("stopped")],
    },
}

for _template in TEMPLATES.values():
    _template["documentParameters"] = _template["documentParameters"] + [dict(p) for p in _COMMON]


def arn(region: str, name: str, version: str = VERSION) -> str:
    return f"arn:aws:iot:{region}::jobtemplate/{name}:{version}"


def get(name: str, version: str | None = None) -> dict | None:
    template = TEMPLATES.get(name)
    if template is None or (version is not None and version != VERSION):
        return None
    return template


def parse_arn(value: str) -> tuple[str, str] | None:
    """(name, version) of a managed template ARN, or None for any other ARN."""
    parts = value.split(":", 5)
    if len(parts) != 6 or parts[4] != "" or not parts[5].startswith("jobtemplate/"):
        return None
    name, _, version = parts[5][len("jobtemplate/"):].partition(":")
    return name, version or VERSION
