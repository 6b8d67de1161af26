"""What the integration user may do, as an admin grants it: everything, less what a test
withholds, written as Salesforce names the rights.

* ``"Contact:read"``, ``"Contact:create"``, ``"Contact:edit"``, ``"Contact:delete"``: the
  object permissions of a profile or permission set (Object Reference, ObjectPermissions:
  PermissionsRead/Create/Edit/Delete). Without read the object is invisible: describe
  answers 404 NOT_FOUND and SOQL 400 INVALID_TYPE, as for an object the org lacks
  (assumption: the REST guide says 404 means "check ... that there are no sharing issues",
  no more).
* ``"Contact.HasOptedOutOfEmail:read"`` / ``":edit"``: field-level security. An unreadable
  field is left out of describe and refused by SOQL as INVALID_FIELD "No such column"; an
  uneditable one is described ``updateable: false`` and refused per record with
  INVALID_FIELD_FOR_INSERT_UPDATE (assumption for the code, which the guides do not print).
* ``"PermissionsBulkApiHardDelete"`` (any ``Permissions<Name>``): a user permission, read
  by the user through ``SELECT PermissionsBulkApiHardDelete FROM UserPermissionAccess``
  (Object Reference, UserPermissionAccess, v41.0+).
"""

from __future__ import annotations

from collections.abc import Iterable

OBJECT_RIGHTS = ("read", "create", "edit", "delete")
USER_PERMISSIONS = ("PermissionsBulkApiHardDelete", "PermissionsModifyAllData")


class Access:
    """The user's rights: all granted, less ``withheld``."""

    def __init__(self, withheld: Iterable[str] = ()) -> None:
        self.withheld = set(withheld)

    def can(self, sobject: str, right: str) -> bool:
        """An object permission; every other right needs read."""
        if f"{sobject}:read" in self.withheld:
            return False
        return f"{sobject}:{right}" not in self.withheld

    def field(self, sobject: str, name: str, right: str) -> bool:
        """Field-level security: ``read`` or ``edit`` (edit needs read and object edit)."""
        if not self.can(sobject, "read") or f"{sobject}.{name}:read" in self.withheld:
            return False
        if right == "edit":
            return self.can(sobject, "edit") and f"{sobject}.{name}:edit" not in self.withheld
        return True

    def permission(self, name: str) -> bool:
        return name not in self.withheld
