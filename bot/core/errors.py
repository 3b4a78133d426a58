"""Errors the core and its adapters share."""

from __future__ import annotations


class EvangelistError(Exception):
    """Base class for errors we raise on purpose."""


class ConfigurationError(EvangelistError):
    """Invalid settings or organisation file. The message names the setting and the value."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class PermissionDenied(EvangelistError):
    """A person tried an action their roles do not allow."""

    def __init__(self, person_key: str, permission: str) -> None:
        super().__init__(f"{person_key} may not {permission}")
        self.person_key = person_key
        self.permission = permission


class DeliveryError(EvangelistError):
    """A platform refused or failed to take a message.

    `permanent` failures are recorded and never retried (channel gone, user blocked the bot);
    transient ones are retried with backoff, after `retry_after` seconds when the platform said so.
    """

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool,
        retry_after: float | None = None,
        blocked: bool = False,
        rate_limited: bool = False,
        outcome_unknown: bool = False,
        waiting: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after
        self.blocked = blocked
        self.rate_limited = rate_limited
        self.outcome_unknown = outcome_unknown
        """The request may have reached the platform (a timeout or reset mid-request)."""
        self.waiting = waiting
        """Nothing failed: the row waits for another one (an update for its original)."""


class NotSupported(EvangelistError):
    """The platform cannot do this (for example, read back what it delivered)."""
