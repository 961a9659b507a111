"""Provider configs for adapter tests, made the way routectl makes them: through the registry's spec.

Tests name values by config attribute (`vpc_id`, `route_table_ids`, `write_rate`, `endpoint` …), common
and provider-specific alike; `configured` sorts them into the `CommonConfig` and the spec's settings, so
the required-setting checks and the config's own rules apply exactly as they do for `routectl run`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from providers.registry import CommonConfig, ConfiguredProvider, discover

_COMMON = frozenset(f.name for f in dataclasses.fields(CommonConfig))


def configured(provider: str, cluster_name: str, **values: Any) -> ConfiguredProvider[Any]:
    spec = discover()[provider]
    common = CommonConfig(cluster_name=cluster_name, **{k: v for k, v in values.items() if k in _COMMON})
    setting = {s.attribute: s.name for s in spec.settings}
    return spec.configure(common, {setting[k]: v for k, v in values.items() if k not in _COMMON})
