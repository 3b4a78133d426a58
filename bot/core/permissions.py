"""Roles and what they allow. Every admin action goes through `require`."""

from __future__ import annotations

from enum import StrEnum

from bot.core.errors import PermissionDenied
from bot.core.types import Person, Role


class Permission(StrEnum):
    VIEW_DELIVERY_STATUS = "view delivery status"
    MANAGE_CAMPAIGNS = "manage campaigns"
    MANAGE_TOPICS = "manage topics and experts"
    MANAGE_SOURCES = "manage brand-page sources"
    MANAGE_LIBRARY = "manage the learning library"
    VIEW_QUESTION_QUEUE = "view the question queue"
    ANSWER_QUESTIONS = "answer routed questions"
    READ_DIGESTS = "read participation digests"


_EMPLOYEE: frozenset[Permission] = frozenset()
_EXPERT = _EMPLOYEE | {Permission.ANSWER_QUESTIONS}
_LEADER = _EMPLOYEE | {Permission.READ_DIGESTS}
_EVANGELIST = frozenset(Permission)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.EMPLOYEE: _EMPLOYEE,
    Role.EXPERT: frozenset(_EXPERT),
    Role.LEADER: frozenset(_LEADER),
    Role.EVANGELIST: _EVANGELIST,
}


def allowed(person: Person, permission: Permission) -> bool:
    return any(permission in ROLE_PERMISSIONS[role] for role in person.roles)


def require(person: Person, permission: Permission) -> None:
    """Raise `PermissionDenied` unless one of the person's roles allows `permission`."""
    if not allowed(person, permission):
        raise PermissionDenied(person.key, permission.value)
