"""Issue 13 finding 10: the sandbox's private-webhook switch still refuses link-local and cloud metadata."""

from __future__ import annotations

import pytest

from voipbin.events.webhooks import DestinationRefused, check_destination

ALWAYS_REFUSED = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",  # AWS/GCP/Azure metadata
    "http://169.254.1.1:8080/x",
    "http://[fe80::1]/hook",
    "http://[::ffff:169.254.169.254]/",  # IPv4-mapped
    "http://[fd00:ec2::254]/latest/meta-data/",  # AWS IPv6 metadata
    "http://100.100.100.200/latest/meta-data/",  # Alibaba metadata
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA.google.internal./computeMetadata/v1/",
]


@pytest.mark.parametrize("uri", ALWAYS_REFUSED)
@pytest.mark.parametrize("allow_private", [False, True])
async def test_link_local_and_metadata_are_refused_even_when_private_is_allowed(uri: str, allow_private: bool) -> None:
    with pytest.raises(DestinationRefused):
        await check_destination(uri, allow_private=allow_private)


@pytest.mark.parametrize("uri", ["http://127.0.0.1:8000/hook", "http://10.1.2.3/hook", "http://localhost:9/h"])
async def test_private_addresses_need_the_switch(uri: str) -> None:
    with pytest.raises(DestinationRefused):
        await check_destination(uri, allow_private=False)
    await check_destination(uri, allow_private=True)


async def test_a_public_address_is_allowed() -> None:
    await check_destination("https://93.184.215.14/hook", allow_private=False)
