"""The API's OpenAPI 3.1 document, built from the functions' own resolvers and template.yaml.

Each function's Powertools resolver documents its routes: parameters and bodies from the handlers'
signatures, answers from their ``responses=`` (which point at the bodies the routes return). template.yaml
says which routes API Gateway exposes and which its JWT authorizer guards. The build merges the
functions' documents into one and adds what no single handler states:

- each operation's security: ``jwt`` where the template puts the authorizer, the handler's own scheme
  where it declares one (the warmup's bearer secret), none otherwise;
- the answers routes share: 500 and 503 everywhere; 422 where the operation takes input; 400 (a body
  that is not UTF-8) and 415 (a body in another media type than JSON) where it takes a body; 401 and
  403 behind the authorizer (401 is API Gateway's own JSON when it refuses the token, problem JSON when
  the token has no verified email); 429 and the RateLimit fields where the route's ``x-rate-limit``
  limits the route;
- the component schemas: the functions' own (their request models, as Powertools documents them) and
  those of the bodies the routes point at, made from the classes ``arcturus`` offers under those names
  (the ``TypedDict`` a route returns, or a pydantic model), merged by name (one name with two different
  schemas is an error), pruned to what the paths use; a reference nothing defines is an error.

Powertools' ``OpenAPIMerge`` finds handlers by file pattern and lets a later component replace an
earlier one of the same name; neither fits an API whose routes come from a template and whose shared
models must agree. Building imports every function's module with its template environment (pointing at
nothing: a function's init connects nowhere), so it runs in a process of its own:
``python -m local openapi``.
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import json
import os
import pkgutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from local import ROOT, LocalError
from local.intrinsics import REGION, NotEmulated
from local.payload import HttpResponse
from local.template import FunctionSpec, HttpRoute, Template
from local.workers import environment_text

DOCUMENT_PATH = "/api/openapi.json"
"""Where ``python -m local serve`` answers the document (like an API Gateway export, not a Lambda route)."""
TITLE = "Arcturus-Prime API"
DESCRIPTION = (
    "The server side of the Arcturus-Prime dashboard: one AWS Lambda function per route behind an API "
    "Gateway HTTP API. Errors are RFC 9457 problem details (application/problem+json)."
)
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "jwt": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": (
            "An OIDC ID token from the configured issuer (by default the stack's Cognito user pool), "
            "checked by the HTTP API's JWT authorizer. Its verified email must be in the roles document. "
            "Locally: python -m local token --email admin@example.com | tail -1"
        ),
    },
    "warmupSecret": {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "The cache warmup secret, kept in Secrets Manager (the stack's CacheWarmupSecretArn output; "
            "make run prints the local one)."
        ),
    },
}
HEADERS: dict[str, dict[str, Any]] = {
    "WWW-Authenticate": {
        "description": "The scheme to authenticate with: Bearer.",
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": 'The route\'s limit: "<name>";q=<requests>;w=<seconds> (not sent to administrators).',
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": 'What is left of it: "<name>";r=<requests>;t=<seconds to the window\'s end>.',
        "schema": {"type": "string"},
    },
}
"""Response headers the build adds to many answers, shared as ``#/components/headers/<name>``
(``Retry-After`` joins them from ``arcturus.web.docs``)."""
_METHOD_ORDER = ("get", "put", "post", "patch", "delete")
_OPERATION_ORDER = (
    "summary",
    "description",
    "operationId",
    "security",
    "parameters",
    "requestBody",
    "responses",
)


def build(template: Template) -> dict[str, Any]:
    """The merged document of every HttpApi route of ``template``."""
    routes = template.routes()
    functions = template.functions()
    modules = {
        logical_id: load_function(template, functions[logical_id])
        for logical_id in dict.fromkeys(route.function for route in routes)
    }
    # Importable now: loading a function put its layers on the path.
    from arcturus.web import docs, problem  # noqa: PLC0415

    shared = _Shared(docs, problem)
    schemas: dict[str, Any] = {}
    documents = {}
    for logical_id, module in modules.items():
        documents[logical_id] = _resolver_document(logical_id, module)
        _merge_schemas(schemas, documents[logical_id].get("components", {}).get("schemas", {}), logical_id)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        description = inspect.cleandoc(modules[route.function].__doc__ or "")
        operation = shared.operation(route, documents[route.function], description)
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    bodies = _layer_bodies(set(_refs(paths, shared.schemas)), documented=set(schemas))
    _merge_schemas(schemas, _body_schemas(bodies, shared.schemas), "arcturus")
    used = _referenced(paths, schemas, shared.schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": _version(), "description": DESCRIPTION},
        "servers": [{"url": "/", "description": "Relative to where this document is served."}],
        "paths": {path: _ordered(paths[path]) for path in sorted(paths)},
        "components": {
            "schemas": {name: schemas[name] for name in sorted(used)},
            "headers": shared.headers,
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def render(document: dict[str, Any]) -> str:
    """The document as committed in docs/openapi.json: two-space JSON, a final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write(template: Template, output: Path | None) -> int:
    """``python -m local openapi [-o FILE]``: the document on stdout, or replacing FILE whole."""
    text = render(build(template))
    if output is None:
        sys.stdout.write(text)
        return 0
    partial = output.with_name(f".{output.name}.partial")
    partial.write_text(text)
    partial.replace(output)
    return 0


class ServedDocument:
    """The answer to ``GET /api/openapi.json`` on the local gateway.

    Built on the first request by ``python -m local openapi`` in a process of its own (importing the
    functions must not touch the server's environment or modules), then kept, as the workers keep their
    code. A failed build answers 500 with its reason and is tried again on the next request.
    """

    def __init__(self, template: Path, *, timeout_s: float = 120.0) -> None:
        self._template = template
        self._timeout_s = timeout_s
        self._body: bytes | None = None
        self._lock = threading.Lock()

    def response(self) -> HttpResponse:
        with self._lock:
            if self._body is None:
                built = subprocess.run(
                    [sys.executable, "-m", "local", "openapi", "--template", str(self._template)],
                    cwd=ROOT,
                    capture_output=True,
                    timeout=self._timeout_s,
                    check=False,
                )
                if built.returncode != 0:
                    reason = built.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
                    return HttpResponse.problem(500, "Internal Server Error", f"openapi: {reason[0]}")
                self._body = built.stdout
        return HttpResponse(200, [("Content-Type", "application/json")], self._body)


def load_function(template: Template, spec: FunctionSpec) -> ModuleType:
    """The function's handler module, imported under its own name with its template environment."""
    module_name = spec.handler.rpartition(".")[0]
    path = spec.code_dir / f"{module_name.replace('.', '/')}.py"
    for layer in spec.layer_dirs:
        if str(layer) not in sys.path:
            sys.path.insert(0, str(layer))
    loader = importlib.util.spec_from_file_location(f"openapi_{spec.logical_id}", path)
    if loader is None or loader.loader is None:
        raise LocalError(f"{spec.logical_id}: cannot import {path}")
    module = importlib.util.module_from_spec(loader)
    from arcturus import container  # noqa: PLC0415 - importable once the layer is on the path

    with _environment(_variables(template, spec)):
        container.reset()  # each function is a container of its own, with its own settings
        loader.loader.exec_module(module)
    return module


def _resolver_document(logical_id: str, module: ModuleType) -> dict[str, Any]:
    resolver = getattr(module, "app", None)
    if not hasattr(resolver, "get_openapi_schema"):
        raise LocalError(f"{logical_id}: {module.__file__} has no Powertools resolver named app")
    schema = resolver.get_openapi_schema(security_schemes=SECURITY_SCHEMES)
    document: dict[str, Any] = schema.model_dump(mode="json", by_alias=True, exclude_none=True)
    return document


def _variables(template: Template, spec: FunctionSpec) -> dict[str, str]:
    """The function's template environment, every resource standing in as its logical id."""
    resolver = template.resolver({logical_id: logical_id for logical_id in template.resources}, {})
    variables = {"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}
    for name, value in spec.environment.items():
        try:
            variables[name] = environment_text(resolver.resolve(value))
        except NotEmulated:
            variables[name] = ""
    return variables


@contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """``variables`` in os.environ while a function's module is imported (its init reads them)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _Shared:
    """The answers and headers every operation may share, in ``arcturus.web``'s terms."""

    def __init__(self, docs: ModuleType, problem: ModuleType) -> None:
        self.schemas: str = docs.SCHEMAS
        self._json: str = docs.JSON
        self._problem_json: str = problem.PROBLEM_JSON
        self.headers = HEADERS | {name: dict(header) for name, header in docs.RETRY_AFTER.items()}

    def operation(self, route: HttpRoute, document: dict[str, Any], description: str) -> dict[str, Any]:
        """The function's operation for ``route``, completed with what every route shares."""
        try:
            operation = copy.deepcopy(document["paths"][route.path][route.method.lower()])
        except KeyError:
            raise LocalError(
                f"template.yaml routes {route.method} {route.path} to {route.function}, "
                "whose resolver has no such route"
            ) from None
        if description:
            operation["description"] = description
        for parameter in operation.get("parameters", []):
            parameter["schema"] = _absent_not_null(parameter)
        if route.authorizer is not None:
            operation["security"] = [{"jwt": []}]
        else:
            operation.setdefault("security", [])
        responses = self._answers(route, operation)
        self._rate_limit(route, operation, responses)
        for code, answer in responses.items():
            headers = answer.setdefault("headers", {})
            if code == "401":
                headers["WWW-Authenticate"] = _header("WWW-Authenticate")
            if code in ("429", "503") or "Retry-After" in headers:
                headers["Retry-After"] = _header("Retry-After")
            if not headers:
                del answer["headers"]
        operation["responses"] = {code: responses[code] for code in sorted(responses)}
        first = [key for key in _OPERATION_ORDER if key in operation]
        return {key: operation[key] for key in [*first, *sorted(set(operation) - set(first))]}

    def _answers(self, route: HttpRoute, operation: dict[str, Any]) -> dict[str, Any]:
        """The route's own answers and the ones it shares, by status code."""
        responses = {
            code: answer
            for code, answer in operation["responses"].items()
            if not self._powertools_validation_error(answer)
        }
        if route.authorizer is not None:
            responses.setdefault("401", self._unauthorized())
            responses.setdefault(
                "403", self._problem("Not in the roles document, or the role lacks the permission.")
            )
        if operation.get("parameters") or operation.get("requestBody"):
            invalid = self._answer("ValidationProblem", "The request did not validate.", self._problem_json)
            responses.setdefault("422", invalid)
        if operation.get("requestBody"):
            responses.setdefault("400", self._problem("The body is not UTF-8 text."))
        if operation.get("requestBody"):
            responses.setdefault(
                "415", self._problem("The body is not JSON (its Content-Type says otherwise).")
            )
        responses.setdefault("500", self._problem("The function failed; the error was logged."))
        responses.setdefault("503", self._problem("The data store is busy."))
        return responses

    def _rate_limit(self, route: HttpRoute, operation: dict[str, Any], responses: dict[str, Any]) -> None:
        """429 and the RateLimit fields where the route declares a rate limit (``guards(limited(...))``)."""
        from arcturus.web.guards import RATE_LIMIT_EXTENSION  # noqa: PLC0415 - the layer is on the path by now

        declared = operation.get(RATE_LIMIT_EXTENSION)
        if declared is None:
            return
        limit = (
            f"At most {declared['limit']} requests per {declared['windowSeconds']} s from one client address "
            f'("{declared["name"]}"; administrators are exempt).'
        )
        operation["description"] = f"{operation.get('description', '')}\n\n{limit}".strip()
        for answer in responses.values():
            answer.setdefault("headers", {}).update(
                {name: _header(name) for name in ("RateLimit-Policy", "RateLimit")}
            )
        responses["429"] = self._problem("Too many requests from this address: wait Retry-After seconds.")
        # A 429 always carries both fields, so it lists them as required, not by the shared reference.
        responses["429"]["headers"] = {
            name: HEADERS[name] | {"required": True} for name in ("RateLimit-Policy", "RateLimit")
        }

    def _unauthorized(self) -> dict[str, Any]:
        return {
            "description": (
                "No valid token: API Gateway's authorizer answers with its own JSON. A valid token "
                "without a verified email claim: problem JSON."
            ),
            "content": {
                self._json: {"schema": {"$ref": self.schemas + "GatewayError"}},
                self._problem_json: {"schema": {"$ref": self.schemas + "Problem"}},
            },
        }

    def _problem(self, description: str) -> dict[str, Any]:
        return self._answer("Problem", description, self._problem_json)

    def _answer(self, model: str, description: str, media_type: str) -> dict[str, Any]:
        return {
            "description": description,
            "content": {media_type: {"schema": {"$ref": self.schemas + model}}},
        }

    def _powertools_validation_error(self, answer: dict[str, Any]) -> bool:
        """Powertools' own 422 (``HTTPValidationError``): ours is problem JSON, added where it applies."""
        schema = answer.get("content", {}).get(self._json, {}).get("schema", {})
        return bool(schema.get("$ref") == self.schemas + "HTTPValidationError")


def _header(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _absent_not_null(parameter: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter's schema without ``null``: on the wire it is absent, never null."""
    schema: dict[str, Any] = parameter["schema"]
    variants = schema.get("anyOf")
    if parameter.get("required") or not variants:
        return schema
    kept = [variant for variant in variants if variant != {"type": "null"}]
    if len(kept) != 1:
        return schema
    return {**kept[0], **{key: value for key, value in schema.items() if key != "anyOf"}}


def _layer_bodies(names: set[str], *, documented: set[str]) -> list[type]:
    """The classes ``arcturus`` offers (its modules' ``__all__``) under ``names`` that describe a body: a
    ``TypedDict`` or a pydantic model.

    A name the layer does not offer is left to the functions' own schemas, and so is a pydantic model a
    function's document already has (Powertools documents a ``Body()`` parameter itself, and renders a
    default or two differently). Powertools also documents a route's return annotation: that schema
    must be the one made here, checked on merging. A name the layer offers as two different classes is
    an error: one name, one schema.
    """
    from pydantic import BaseModel  # noqa: PLC0415
    from typing_extensions import is_typeddict  # noqa: PLC0415

    import arcturus  # noqa: PLC0415 - the layer's, on the path by now

    offered: dict[str, set[type]] = {}
    for found in pkgutil.walk_packages(arcturus.__path__, "arcturus."):
        module = importlib.import_module(found.name)
        for name in set(getattr(module, "__all__", ())) & names:
            value = getattr(module, name)
            if isinstance(value, type) and (is_typeddict(value) or issubclass(value, BaseModel)):
                offered.setdefault(name, set()).add(value)
    bodies = []
    for name in sorted(offered):
        where = sorted(f"{body.__module__}.{body.__qualname__}" for body in offered[name])
        if len(where) > 1:
            raise LocalError(f"the document's {name} could be any of {', '.join(where)}: name them apart")
        body = offered[name].pop()
        if is_typeddict(body) or name not in documented:
            bodies.append(body)
    return bodies


def _body_schemas(bodies: list[type], prefix: str) -> dict[str, Any]:
    """The JSON schemas of ``bodies`` and of the types they nest, by name."""
    from pydantic import TypeAdapter  # noqa: PLC0415 - with the layer's pydantic

    _, definitions = TypeAdapter.json_schemas(
        [(body, "validation", TypeAdapter(body)) for body in bodies], ref_template=prefix + "{model}"
    )
    schemas: dict[str, Any] = definitions.get("$defs", {})
    return schemas


def _merge_schemas(schemas: dict[str, Any], more: dict[str, Any], source: str) -> None:
    for name, schema in more.items():
        if name in schemas and schemas[name] != schema:
            raise LocalError(
                f"schema {name} from {source} differs from the one of the same name already merged"
            )
        schemas[name] = schema


def _referenced(paths: dict[str, Any], schemas: dict[str, Any], prefix: str) -> set[str]:
    """The schema names the paths use, directly or through other schemas; each must be defined."""
    used: set[str] = set()
    pending = list(_refs(paths, prefix))
    while pending:
        name = pending.pop()
        if name in used:
            continue
        if name not in schemas:
            raise LocalError(f"the document refers to {prefix}{name}, which no model defines")
        used.add(name)
        pending.extend(_refs(schemas[name], prefix))
    return used


def _refs(node: Any, prefix: str) -> Iterator[str]:
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith(prefix):
            yield reference.removeprefix(prefix)
        for value in node.values():
            yield from _refs(value, prefix)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value, prefix)


def _ordered(path_item: dict[str, Any]) -> dict[str, Any]:
    return {method: path_item[method] for method in _METHOD_ORDER if method in path_item}


def _version() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return str(project["version"])
