"""AWS Signature Version 4 for the Polly and Transcribe adapters (botocore's signer)."""

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from voipbin.speech.cloud import require_key
from voipbin.speech.settings import SpeechSettings


def credentials(settings: SpeechSettings, provider: str = "aws") -> Credentials:
    """AWS credentials from settings. Raises `SpeechConfigError` when keys are missing."""
    access = require_key(provider, settings.aws_access_key_id, "VOIPBIN_AWS_ACCESS_KEY_ID")
    secret = require_key(
        provider, settings.aws_secret_access_key, "VOIPBIN_AWS_SECRET_ACCESS_KEY"
    )
    token = settings.aws_session_token.get_secret_value() if settings.aws_session_token else None
    return Credentials(access, secret, token)


def signed_headers(
    creds: Credentials,
    *,
    service: str,
    region: str,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
) -> dict[str, str]:
    """Headers (with ``Authorization``, ``X-Amz-Date``...) for a SigV4-signed request."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(creds, service, region).add_auth(request)
    return dict(request.headers.items())


def presigned_url(
    creds: Credentials, *, service: str, region: str, url: str, expires_s: int = 300
) -> str:
    """A SigV4 query-string presigned GET URL (Transcribe streaming over WebSocket)."""
    request = AWSRequest(method="GET", url=url)
    SigV4QueryAuth(creds, service, region, expires=expires_s).add_auth(request)
    return request.url
