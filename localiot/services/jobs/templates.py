"""Job templates (yours and AWS managed ones) and what CreateJob takes from them.

A custom template holds a document (inline, from S3, or copied from an
existing job with jobArn) and the job configurations; a job created from it
takes each configuration the request leaves out. An AWS managed template's
document has `${aws:iot:parameter:name}` placeholders that the job's
documentParameters fill; documentParameters are refused with any other
template or none (API reference, CreateJob).
"""

from __future__ import annotations

import re

from localiot.protocol.errors import ServiceError, invalid, not_found
from localiot.services.common import apply_tags, page_list, tags_to_dict
from localiot.services.jobs import documents, managed, model, validation
from localiot.services.jobs.model import TEMPLATE, handler
from localiot.services.tagging import taggable

taggable("jobtemplate", lambda tx, name: tx.get(TEMPLATE, name) is not None)

COPIED = ("presignedUrlConfig", "jobExecutionsRolloutConfig", "abortConfig", "timeoutConfig",
          "jobExecutionsRetryConfig", "destinationPackageVersions")


def _arn(ctx, template_id: str) -> str:
    return ctx.arn(f"jobtemplate/{template_id}")


def get(ctx, template_id: str) -> dict:
    doc = ctx.tx.get(TEMPLATE, template_id)
    if doc is None:
        raise not_found(f"Job template {template_id} cannot be found.")
    return doc


@handler("iot")
def CreateJobTemplate(ctx, req):
    template_id = req["jobTemplateId"]
    if ctx.tx.get(TEMPLATE, template_id) is not None:
        raise ServiceError("ConflictException", f"Job template {template_id} already exists.", resourceId=template_id)
    sources = [k for k in ("jobArn", "document", "documentSource") if req.get(k)]
    if len(sources) > 1:
        raise invalid("Specify only one of jobArn, document and documentSource.")
    if not sources:
        raise invalid("One of jobArn, document or documentSource must be specified.")
    doc = {
        "jobTemplateId": template_id,
        "jobTemplateArn": _arn(ctx, template_id),
        "description": req["description"],
        "createdAt": ctx.now(),
    }
    if req.get("jobArn"):
        job_id = _job_id_of(ctx, req["jobArn"])
        job = model.get_job(ctx, job_id)
        doc["document"] = job.get("document")
        if job.get("documentSource"):
            doc["documentSource"] = job["documentSource"]
        for field in COPIED:
            if job.get(field):
                doc[field] = job[field]
        windows = (job.get("schedulingConfig") or {}).get("maintenanceWindows")
        if windows:
            doc["maintenanceWindows"] = windows
    elif req.get("document") is not None:
        doc["document"] = validation.document(req["document"])
    else:
        documents.parse_s3_url(req["documentSource"])
        doc["documentSource"] = req["documentSource"]
    for field in COPIED:
        if req.get(field):
            doc[field] = req[field]
    if req.get("maintenanceWindows"):
        doc["maintenanceWindows"] = req["maintenanceWindows"]
    validation.configs(doc, ctx.now())
    ctx.tx.put(TEMPLATE, template_id, doc)
    apply_tags(ctx, doc["jobTemplateArn"], tags_to_dict(req.get("tags")))
    return {"jobTemplateArn": doc["jobTemplateArn"], "jobTemplateId": template_id}


def _job_id_of(ctx, arn: str) -> str:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[5].startswith("job/"):
        raise invalid(f"Invalid job ARN: {arn}")
    if parts[3] != ctx.region or parts[4] != ctx.account:
        raise not_found(f"Job {arn} cannot be found.")
    return parts[5][len("job/"):]


@handler("iot")
def DescribeJobTemplate(ctx, req):
    doc = get(ctx, req["jobTemplateId"])
    return {k: v for k, v in doc.items() if v is not None}


@handler("iot")
def ListJobTemplates(ctx, req):
    rows = [doc for _, doc in ctx.tx.scan(TEMPLATE)]
    rows.sort(key=lambda d: d["jobTemplateId"])  # AWS documents no order: ascending by name
    items, token = page_list(rows, req, key=lambda d: d["jobTemplateId"])
    return {"jobTemplates": [{k: d.get(k) for k in ("jobTemplateArn", "jobTemplateId", "description", "createdAt")}
                             for d in items], "nextToken": token}


@handler("iot")
def DeleteJobTemplate(ctx, req):
    doc = get(ctx, req["jobTemplateId"])
    ctx.tx.delete(TEMPLATE, doc["jobTemplateId"])
    ctx.tx.drop_tags(doc["jobTemplateArn"])
    return {}


# managed templates -----------------------------------------------------------------
def _managed_summary(ctx, name: str, template: dict) -> dict:
    return {"templateArn": managed.arn(ctx.region, name), "templateName": name,
            "description": template["description"], "environments": list(managed.ENVIRONMENTS),
            "templateVersion": managed.VERSION}


@handler("iot")
def ListManagedJobTemplates(ctx, req):
    name = req.get("templateName")
    if name is not None and managed.get(name) is None:
        raise not_found(f"Managed job template {name} cannot be found.")
    rows = [(n, t) for n, t in sorted(managed.TEMPLATES.items()) if name is None or n == name]
    items, token = page_list(rows, req, key=lambda row: row[0])
    return {"managedJobTemplates": [_managed_summary(ctx, n, t) for n, t in items], "nextToken": token}


@handler("iot")
def DescribeManagedJobTemplate(ctx, req):
    name, version = req["templateName"], req.get("templateVersion")
    template = managed.get(name, version)
    if template is None:
        suffix = f" version {version}" if version else ""
        raise not_found(f"Managed job template {name}{suffix} cannot be found.")
    out = _managed_summary(ctx, name, template)
    out["document"] = template["document"]
    out["documentParameters"] = [dict(p) for p in template["documentParameters"]]
    return out


# what CreateJob takes from a template ------------------------------------------------
def for_job(ctx, req: dict) -> dict:
    """The document and configurations of a CreateJob request, its template applied.

    Returns {"document", "documentSource", "documentBeforeSubstitution",
    "documentParameters", "jobTemplateArn", config fields...}."""
    template_arn = req.get("jobTemplateArn")
    params = req.get("documentParameters")
    given = [k for k in ("document", "documentSource") if req.get(k) is not None]
    if len(given) > 1:
        raise invalid("Specify only one of document and documentSource.")
    spec: dict = {field: req.get(field) for field in COPIED}
    spec["schedulingConfig"] = req.get("schedulingConfig")
    if template_arn is None:
        if params:
            raise invalid("documentParameters can only be used when creating jobs from AWS managed templates.")
        if not given:
            raise invalid("Either document or documentSource must be specified.")
        _document_from(ctx, spec, req.get("document"), req.get("documentSource"))
        return spec
    spec["jobTemplateArn"] = template_arn
    if given:
        raise invalid("A job created from a job template takes its document from the template; "
                      "do not specify document or documentSource.")
    managed_ref = managed.parse_arn(template_arn)
    if managed_ref is not None:
        name, version = managed_ref
        template = managed.get(name, version)
        if template is None:
            raise not_found(f"Managed job template {template_arn} cannot be found.")
        values = _check_parameters(template, params or {})
        spec["documentBeforeSubstitution"] = template["document"]
        spec["document"] = documents.substitute(template["document"], values)
        spec["documentParameters"] = dict(params or {})
        return spec
    if params:
        raise invalid("documentParameters can only be used when creating jobs from AWS managed templates.")
    template_id = _template_id_of(ctx, template_arn)
    template = get(ctx, template_id)
    for field in COPIED:
        if spec.get(field) is None and template.get(field):
            spec[field] = template[field]
    if template.get("maintenanceWindows"):
        scheduling = dict(spec.get("schedulingConfig") or {})
        scheduling.setdefault("maintenanceWindows", template["maintenanceWindows"])
        spec["schedulingConfig"] = scheduling
    _document_from(ctx, spec, template.get("document"), template.get("documentSource"))
    return spec


def _document_from(ctx, spec: dict, document: str | None, source: str | None) -> None:
    if source:
        spec["documentSource"] = source
        spec["document"] = validation.document(documents.fetch(ctx, source))
    else:
        spec["document"] = validation.document(document or "")


def _template_id_of(ctx, arn: str) -> str:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[5].startswith("jobtemplate/"):
        raise invalid(f"Invalid job template ARN: {arn}")
    if parts[3] != ctx.region or parts[4] != ctx.account:
        raise not_found(f"Job template {arn} cannot be found.")
    return parts[5][len("jobtemplate/"):]


def _check_parameters(template: dict, given: dict[str, str]) -> dict[str, str]:
    known = {p["key"]: p for p in template["documentParameters"]}
    for key in given:
        if key not in known:
            raise invalid(f"Unknown document parameter {key}; this template takes "
                          f"{', '.join(sorted(known)) or 'no parameters'}.")
    values = {}
    for key, param in known.items():
        value = given.get(key)
        if value is None:
            if not param.get("optional"):
                raise invalid(f"The document parameter {key} is required by this template.")
            values[key] = ""
            continue
        if param.get("regex") and not re.fullmatch(param["regex"], value):
            raise invalid(f"The value of document parameter {key} does not match {param['regex']}.")
        values[key] = value
    return values
