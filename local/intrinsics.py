"""CloudFormation intrinsic functions, evaluated against the resources the local runtime created.

Only what a template's function environments, authorizer settings and emulated resources use is
supported; a reference to a resource that is not emulated (a Cognito pool, an IAM policy) raises
NotEmulated, so a caller can fall back to a local stand-in instead of inventing a value.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
STACK_NAME = "arcturus-local"

PSEUDO_PARAMETERS = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::StackName": STACK_NAME,
    "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/local",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NotificationARNs": [],
}

_NO_VALUE = object()
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


class NotEmulated(LookupError):
    """The value refers to something the local runtime does not create."""


class Resolver:
    """Evaluates intrinsics with parameter values, conditions and the created resources' references.

    ``refs`` maps a logical id to what ``!Ref`` returns for it; ``attrs`` maps a logical id to its
    ``!GetAtt`` attributes. Both may grow while resources are being created.
    """

    def __init__(
        self,
        parameters: Mapping[str, Any],
        conditions: Mapping[str, Any],
        mappings: Mapping[str, Any],
        refs: Mapping[str, Any],
        attrs: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self._parameters = parameters
        self._conditions = conditions
        self._mappings = mappings
        self._refs = refs
        self._attrs = attrs
        self._evaluated: dict[str, bool] = {}

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic replaced by its result (``AWS::NoValue`` entries dropped)."""
        resolved = self._resolve(value)
        return None if resolved is _NO_VALUE else resolved

    def condition(self, name: str) -> bool:
        """The named condition of the template's Conditions section."""
        if name not in self._evaluated:
            if name not in self._conditions:
                raise KeyError(f"unknown condition {name!r}")
            self._evaluated[name] = bool(self._resolve(self._conditions[name]))
        return self._evaluated[name]

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in map(self._resolve, value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, argument),) = value.items()
            function = _FUNCTIONS.get(name)
            if function is not None:
                return function(self, argument)
        return {
            key: item
            for key, item in ((k, self._resolve(v)) for k, v in value.items())
            if item is not _NO_VALUE
        }

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self._parameters:
            return self._parameters[name]
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        if name in self._refs:
            return self._refs[name]
        raise NotEmulated(name)

    def get_att(self, argument: Any) -> Any:
        logical_id, attribute = (
            argument.split(".", 1) if isinstance(argument, str) else self._resolve(argument)
        )
        try:
            return self._attrs[logical_id][attribute]
        except KeyError:
            raise NotEmulated(f"{logical_id}.{attribute}") from None

    def sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        variables = {key: self._resolve(item) for key, item in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and name not in self._parameters:
                return str(self.get_att(name))
            value = self.ref(name)
            return ",".join(value) if isinstance(value, list) else str(value)

        return _SUB_VARIABLE.sub(replace, text)

    def if_(self, argument: Any) -> Any:
        name, when_true, when_false = argument
        return self._resolve(when_true if self.condition(name) else when_false)


def _select(resolver: Resolver, argument: Any) -> Any:
    index, items = resolver._resolve(argument)
    return items[int(index)]


def _find_in_map(resolver: Resolver, argument: Any) -> Any:
    name, top, second = resolver._resolve(argument)
    return resolver._mappings[name][top][second]


_FUNCTIONS: dict[str, Any] = {
    "Ref": lambda r, a: r.ref(r._resolve(a)),
    "Condition": lambda r, a: r.condition(a),
    "Fn::GetAtt": Resolver.get_att,
    "Fn::Sub": Resolver.sub,
    "Fn::If": Resolver.if_,
    "Fn::Equals": lambda r, a: str(r._resolve(a[0])) == str(r._resolve(a[1])),
    "Fn::Not": lambda r, a: not r._resolve(a[0]),
    "Fn::And": lambda r, a: all(r._resolve(item) for item in a),
    "Fn::Or": lambda r, a: any(r._resolve(item) for item in a),
    "Fn::Join": lambda r, a: str(a[0]).join(str(item) for item in r._resolve(a[1])),
    "Fn::Split": lambda r, a: str(r._resolve(a[1])).split(a[0]),
    "Fn::Select": _select,
    "Fn::FindInMap": _find_in_map,
    "Fn::Base64": lambda r, a: base64.b64encode(str(r._resolve(a)).encode()).decode(),
}
