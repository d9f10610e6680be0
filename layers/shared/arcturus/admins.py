"""Administrators of the roles document from a shell: how a fresh deployment gets its first admin.

    KV_TABLE_NAME=<stack output KVTableName> python -m arcturus.admins add you@example.com
    KV_TABLE_NAME=... python -m arcturus.admins list

``add`` makes the email an administrator (a role holding ``*``), creating the document with the three
roles of the original design when the table has none. It writes through the same validation and
compare-and-set as ``PUT /api/auth/roles``, so it never overwrites an edit it did not see. Run it with
AWS credentials allowed to GetItem and PutItem on the table (``AWS_ENDPOINT_URL`` points it at the
local runtime's embedded AWS).
"""

from __future__ import annotations

import argparse
import copy
import sys
from typing import Any, Final

from arcturus.errors import VersionConflict
from arcturus.roles import (
    ADMIN_PERMISSION,
    MANAGE_ROLES,
    WIDGETS,
    RolesDocument,
    RolesStore,
    grants,
    permissions_of,
    roles_store,
)

__all__ = ["ADMIN_ROLE", "DESIGN_ROLES", "administrators", "main", "with_admin"]

ADMIN_ROLE: Final = "admin"
DESIGN_ROLES: Final = {
    ADMIN_ROLE: {
        "permissions": [ADMIN_PERMISSION],
        "description": "Full access to all features and services",
    },
    "member": {
        "permissions": ["view:dashboard", "use:chat", "view:status"],
        "description": "Limited access to specific features",
    },
    "demo": {
        "permissions": ["view:dashboard", "view:status"],
        "description": "Read-only tour of the platform",
    },
}
"""The roles of the original design, for a document created from nothing."""


def with_admin(document: RolesDocument, email: str, display_name: str | None = None) -> dict[str, Any]:
    """A copy of ``document`` with ``email`` holding a role that grants ``*``.

    An existing user keeps everything but the role; a new one gets every service, feature and site and
    a dashboard with every widget. Raises ValueError when the role named ``admin`` exists without ``*``
    and no other role has it (the command will not silently widen someone's role).
    """
    data: dict[str, Any] = copy.deepcopy(dict(document))
    roles: dict[str, Any] = data["roles"] or dict(DESIGN_ROLES)
    data["roles"] = roles
    role = next((name for name, r in roles.items() if ADMIN_PERMISSION in r["permissions"]), None)
    if role is None:
        if ADMIN_ROLE in roles:
            raise ValueError(
                f"role {ADMIN_ROLE!r} exists without '{ADMIN_PERMISSION}'; edit it with PUT /api/auth/roles"
            )
        roles[ADMIN_ROLE] = DESIGN_ROLES[ADMIN_ROLE]
        role = ADMIN_ROLE
    email = email.strip().lower()
    user = data["users"].get(email) or {
        "email": email,
        "services": ["*"],
        "features": ["*"],
        "sites": ["*"],
        "dashboardProfiles": [{"id": "default", "name": "Command Center", "widgets": list(WIDGETS)}],
    }
    user["role"] = role
    if display_name:
        user["displayName"] = display_name
    data["users"][email] = user
    return data


def administrators(document: RolesDocument) -> list[str]:
    """Emails of the users who can manage roles (``*``, ``manage:*`` or ``manage:roles``)."""
    return sorted(
        email for email in document["users"] if grants(permissions_of(document, email), MANAGE_ROLES)
    )


def main(argv: list[str] | None = None, store: RolesStore | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m arcturus.admins",
        description="Administrators of the roles document (data:user-roles).",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="make EMAIL an administrator (creates the document if needed)")
    add.add_argument("email")
    add.add_argument("--display-name")
    actions.add_parser("list", help="print the users who can manage roles")
    args = parser.parse_args(argv)
    store = store or roles_store()

    document, version = store.read_with_version()
    if args.action == "list":
        print("\n".join(administrators(document)) or "(nobody: add one)")
        return 0
    try:
        updated, new_version = store.replace(with_admin(document, args.email, args.display_name), version)
    except VersionConflict:
        print("the roles document changed while this ran; run the command again", file=sys.stderr)
        return 1
    except ValueError as error:  # pydantic's ValidationError included: nothing was written
        print(f"not written: {error}", file=sys.stderr)
        return 2
    print(
        f"{args.email.strip().lower()} is an administrator (document version {new_version}); administrators:"
    )
    print("\n".join(administrators(updated)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
