"""Exceptions raised by the speech engines.

`SpeechConfigError` (and its subclasses) means the request itself is wrong: unknown
provider, provider without credentials, invalid or unsupported language, unknown voice.
It subclasses `ValueError`; the API layer maps it to 400 INVALID_ARGUMENT.
`SpeechProviderError` means a provider failed while serving a valid request (cloud
service answered an error, engine crashed); the API layer maps it to 500/502.
"""


class SpeechError(Exception):
    """Base class of every speech engine error."""


class SpeechConfigError(SpeechError, ValueError):
    """The request or configuration is invalid (maps to HTTP 400)."""


class InvalidLanguageError(SpeechConfigError):
    """The language is not a well-formed, valid BCP 47 tag (e.g. ``en_US``, ``xx-YY``)."""


class UnsupportedLanguageError(SpeechConfigError):
    """The language is valid BCP 47 but the chosen provider cannot speak or hear it."""


class SpeechProviderError(SpeechError):
    """A provider failed while serving a valid request.

    Attributes:
        provider: provider name (``"elevenlabs"``, ``"gcp"``, ...).
        status: HTTP status the provider answered, when there was one.
    """

    def __init__(self, provider: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.status = status
