"""What the core says when it refuses something. Every message is meant for the person who asked."""


class IncidentError(Exception):
    """A request the core cannot carry out; the message says why and what to do instead."""


class NotFound(IncidentError):
    pass


class NotAllowed(IncidentError):
    pass


class InvalidInput(IncidentError):
    pass


class AlreadyHandled(IncidentError):
    """The input was handled already (by another replica, or before a restart): its change is rolled back."""


class SettingsError(IncidentError):
    """The settings file is invalid; the message names file, line and field."""


class OutsideError(Exception):
    """An outside service (Confluence, ...) failed; the message is fit to show to people. `transient`: worth
    trying again later (the outbox does, after `retry_after` seconds when the service said how long)."""

    def __init__(self, message: str, *, transient: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after
