"""Keep the cloud SDKs' default credential chains away from instance-metadata addresses.

With no credentials configured, boto3, google-auth and alibabacloud-credentials each probe a metadata
server (169.254.169.254, metadata.google.internal, 100.100.100.200). Tests and the demo must never let a
packet go there: every SDK is told not to probe, and google-auth is pointed at a closed loopback port.
Set before the SDKs are imported: google-auth and alibabacloud-credentials read these at import time.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

METADATA_PROBES_OFF: Mapping[str, str] = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
    "NO_GCE_CHECK": "true",
    # Port 9 (discard) on loopback: nothing listens, so a probe that still happens is refused at once.
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "GCE_METADATA_IP": "127.0.0.1:9",
}
METADATA_ADDRESSES = ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "metadata.google.internal")


def disable_metadata_probes(env: MutableMapping[str, str]) -> None:
    """Write the settings above into `env` (`os.environ` for this process and its children)."""
    env.update(METADATA_PROBES_OFF)
