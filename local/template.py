"""template.yaml read the way SAM reads it: Globals merged in, functions, routes, schedules, authorizers.

The local runtime takes everything it serves from here, so the template stays the one description of
the application: nothing about routes, resources or environments is written a second time in ``local``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from local import LocalError
from local.intrinsics import Resolver

FUNCTION = "AWS::Serverless::Function"
HTTP_API = "AWS::Serverless::HttpApi"
LAYER = "AWS::Serverless::LayerVersion"
IMPLICIT_HTTP_API = "ServerlessHttpApi"
"""The API SAM creates for HttpApi events that name no ApiId."""


class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (``!Ref``, ``!Sub``, ...) as their long forms."""


def _intrinsic(loader: _Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _intrinsic)


@dataclass(frozen=True)
class FunctionSpec:
    """One AWS::Serverless::Function with its Globals applied (environment still unresolved)."""

    logical_id: str
    name: str
    code_dir: Path
    handler: str
    runtime: str
    timeout: float
    memory_mb: int
    environment: dict[str, Any]
    layer_dirs: tuple[Path, ...]
    log_format: str
    log_level: str


@dataclass(frozen=True)
class HttpRoute:
    """One HttpApi event: ``method`` is upper case or ``ANY``; ``authorizer`` None means no JWT."""

    api: str
    method: str
    path: str
    function: str
    authorizer: str | None
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class ScheduleSpec:
    """One Schedule (or ScheduleV2) event of a function."""

    function: str
    event: str
    expression: str
    rule_name: str
    input: str | None
    enabled: bool


def _merge(base: Any, override: Any) -> Any:
    """SAM's Globals rule: maps merge (the function wins), lists add up, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list):
        return base + override
    return override


def _parameter_value(spec: dict[str, Any], override: str | None) -> Any:
    value = override if override is not None else spec.get("Default", "")
    if spec.get("Type", "String") == "CommaDelimitedList" or str(spec.get("Type")).startswith("List<"):
        return [item.strip() for item in str(value).split(",")] if not isinstance(value, list) else value
    return str(value) if not isinstance(value, str) else value


class Template:
    """A SAM template on disk, with parameter values chosen (defaults unless overridden)."""

    def __init__(self, path: Path, overrides: dict[str, str] | None = None) -> None:
        self.path = path.resolve()
        self.base_dir = self.path.parent
        self.document: dict[str, Any] = yaml.load(self.path.read_text(), Loader=_Loader)  # noqa: S506 - SafeLoader subclass
        self.overrides = overrides = overrides or {}
        unknown = set(overrides) - set(self.document.get("Parameters", {}))
        if unknown:
            raise LocalError(f"unknown template parameter(s): {', '.join(sorted(unknown))}")
        self.parameters = {
            name: _parameter_value(spec, overrides.get(name))
            for name, spec in self.document.get("Parameters", {}).items()
        }
        self._globals = self.document.get("Globals", {})
        plain = self.resolver({}, {})
        self.resources: dict[str, dict[str, Any]] = {
            logical_id: resource
            for logical_id, resource in self.document.get("Resources", {}).items()
            if "Condition" not in resource or plain.condition(resource["Condition"])
        }

    def resolver(self, refs: dict[str, Any], attrs: dict[str, dict[str, Any]]) -> Resolver:
        """A resolver over this template's parameters, conditions and mappings and the given resources."""
        return Resolver(
            self.parameters,
            self.document.get("Conditions", {}),
            self.document.get("Mappings", {}),
            refs,
            attrs,
        )

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """``{logical_id: Properties}`` of every (condition-enabled) resource of ``resource_type``."""
        return {
            logical_id: resource.get("Properties", {})
            for logical_id, resource in self.resources.items()
            if resource.get("Type") == resource_type
        }

    def function_properties(self, logical_id: str) -> dict[str, Any]:
        properties: dict[str, Any] = _merge(
            self._globals.get("Function", {}), self.of_type(FUNCTION)[logical_id]
        )
        return properties

    def functions(self) -> dict[str, FunctionSpec]:
        return {logical_id: self._function(logical_id) for logical_id in self.of_type(FUNCTION)}

    def _function(self, logical_id: str) -> FunctionSpec:
        properties = self.function_properties(logical_id)
        logging = properties.get("LoggingConfig", {})
        name = properties.get("FunctionName")
        return FunctionSpec(
            logical_id=logical_id,
            name=name if isinstance(name, str) else logical_id,
            code_dir=(self.base_dir / str(properties.get("CodeUri", "."))).resolve(),
            handler=str(properties.get("Handler", "app.handler")),
            runtime=str(properties.get("Runtime", "python3.13")),
            timeout=float(properties.get("Timeout", 3)),
            memory_mb=int(properties.get("MemorySize", 128)),
            environment=properties.get("Environment", {}).get("Variables", {}),
            layer_dirs=tuple(self._layer_dir(layer) for layer in properties.get("Layers", [])),
            log_format=str(logging.get("LogFormat", "Text")),
            log_level=str(logging.get("ApplicationLogLevel", "")),
        )

    def _layer_dir(self, layer: Any) -> Path:
        """The directory a layer's content is importable from, as /opt/python is in Lambda."""
        logical_id = layer.get("Ref") if isinstance(layer, dict) else None
        layers = self.of_type(LAYER)
        if logical_id not in layers:
            raise LocalError(f"layer {layer!r}: only !Ref to an AWS::Serverless::LayerVersion runs locally")
        content = (self.base_dir / str(layers[logical_id]["ContentUri"])).resolve()
        # Built layers (and hand-made ones without a BuildMethod) keep packages under python/.
        return content / "python" if (content / "python").is_dir() else content

    def http_apis(self) -> dict[str, dict[str, Any]]:
        """Every HttpApi's properties with Globals.HttpApi applied, the implicit one included."""
        apis = self.of_type(HTTP_API) | {IMPLICIT_HTTP_API: {}}
        return {
            logical_id: _merge(self._globals.get("HttpApi", {}), props) for logical_id, props in apis.items()
        }

    def routes(self) -> list[HttpRoute]:
        apis = self.http_apis()
        routes = []
        for function, properties in self.of_type(FUNCTION).items():
            for event in properties.get("Events", {}).values():
                if event.get("Type") != "HttpApi":
                    continue
                props = event.get("Properties", {})
                api_ref = props.get("ApiId")
                api = api_ref["Ref"] if isinstance(api_ref, dict) else IMPLICIT_HTTP_API
                api_auth = apis[api].get("Auth", {})
                auth = props.get("Auth", {})
                authorizer = auth.get("Authorizer", api_auth.get("DefaultAuthorizer"))
                default_scopes = (
                    api_auth.get("Authorizers", {}).get(authorizer, {}).get("AuthorizationScopes", [])
                )
                routes.append(
                    HttpRoute(
                        api=api,
                        method=str(props.get("Method", "ANY")).upper(),
                        path=str(props.get("Path", "$default")),
                        function=function,
                        authorizer=None if authorizer in (None, "NONE") else authorizer,
                        scopes=tuple(auth.get("AuthorizationScopes", default_scopes)),
                    )
                )
        return routes

    def schedules(self) -> list[ScheduleSpec]:
        schedules = []
        for function, properties in self.of_type(FUNCTION).items():
            for event_name, event in properties.get("Events", {}).items():
                props = event.get("Properties", {})
                if event.get("Type") == "Schedule":
                    expression, enabled = props.get("Schedule"), props.get("Enabled", True)
                elif event.get("Type") == "ScheduleV2":
                    expression, enabled = props.get("ScheduleExpression"), props.get("State") != "DISABLED"
                else:
                    continue
                schedules.append(
                    ScheduleSpec(
                        function=function,
                        event=event_name,
                        expression=str(expression),
                        rule_name=str(props.get("Name") or f"{function}{event_name}"),
                        input=props.get("Input"),
                        enabled=bool(enabled) and props.get("State") != "DISABLED",
                    )
                )
        return schedules
