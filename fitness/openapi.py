"""OpenAPI schema additions (drf-spectacular postprocessing hook).

drf-spectacular documents what a view answers when all goes well; the errors that DRF
answers on its own are added here, so that clients (and the schema fuzzing test) know
every status code an operation can return, each with the JSON error body:

- 400 where the operation takes a body or query parameters (field -> messages);
- 401 where it needs a login, or checks credentials (tokens); 403 where it needs a login
  (not allowed, e.g. not staff);
- 404 where the path names an object (another user's objects are 404 too), or a page
  or cursor that does not exist;
- 413 for file uploads, 415 for bodies of another media type;
- 429 everywhere (rate limits: ``fitness/core/throttling.py``), with ``Retry-After``.

Error answers a view documents with a description only (a 409, say) get the same JSON error body.
"""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "description": (
        "An error: `detail` (and `code`) for request-level errors, or the names of the fields "
        'at fault, each with a list of messages (`{"file": ["the file is empty"]}`).'
    ),
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "additionalProperties": True,
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_DESCRIPTIONS = {
    "400": "Invalid input: the body names each field at fault and the problem",
    "401": "Not logged in, or the token is invalid or expired",
    "403": "Logged in, but not allowed (for example: not staff)",
    "404": "No such object of the caller",
    "413": "The upload is larger than the limit",
    "415": "The body is not of a media type the operation reads",
    "429": "Too many requests: wait as many seconds as `Retry-After` says",
    "410": "`updated_since` is older than the deletions kept (`code: resync_required`): sync in full",
}
_METHODS = {"get", "put", "post", "patch", "delete"}


def _error_codes(path: str, operation: dict) -> list[str]:
    codes = ["429"]
    if operation.get("requestBody") or any(p.get("in") == "query" for p in operation.get("parameters", [])):
        codes.append("400")
    security = operation.get("security")
    if not security or {} not in security:
        codes.append("401")
    if security and {} not in security:
        codes.append("403")
    paged = any(p.get("in") == "query" and p.get("name") in {"page", "cursor"} for p in operation.get("parameters", []))
    if "{" in path or paged:
        codes.append("404")
    content = operation.get("requestBody", {}).get("content", {})
    if content:
        codes.append("415")
    if "multipart/form-data" in content and "application/json" not in content:
        codes.append("413")
    if any(p.get("in") == "query" and p.get("name") == "updated_since" for p in operation.get("parameters", [])):
        codes.append("410")
    return codes


def document_error_responses(result: dict, generator, request, public) -> dict:
    """Add the error answers of DRF and of this project to every operation of the API."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for code, response in responses.items():
                # An error a view documents with a description only is sent with the JSON error body.
                if str(code)[:1] in "45" and "content" not in response:
                    response["content"] = {"application/json": {"schema": _ERROR_REF}}
            for code in _error_codes(path, operation):
                if code in responses:
                    continue
                response = {"description": _DESCRIPTIONS[code], "content": {"application/json": {"schema": _ERROR_REF}}}
                if code == "429":
                    response["headers"] = {
                        "Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}
                    }
                responses[code] = response
    return result
