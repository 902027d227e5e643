"""The departments that provide data, by the slug catalogue entries and accounts name them,
with their registered names in Chinese and English.

A provider not registered here is shown by its slug, as an identifier.
"""

from __future__ import annotations

#: slug -> (registered Chinese name, registered English name)
REGISTERED_NAMES: dict[str, tuple[str, str]] = {
    "wuxi-health-commission": ("无锡市卫生健康委员会", "Wuxi Municipal Health Commission"),
    "wuxi-market-regulation": ("无锡市市场监督管理局", "Wuxi Administration for Market Regulation"),
    "wuxi-statistics-bureau": ("无锡市统计局", "Wuxi Municipal Bureau of Statistics"),
    "wuxi-civil-affairs": ("无锡市民政局", "Wuxi Municipal Civil Affairs Bureau"),
    "city-health-commission": ("市卫生健康委员会", "City Health Commission"),
    "city-market-regulation": ("市市场监督管理局", "City Administration for Market Regulation"),
}


def provider_name(slug: str, lang: str) -> str | None:
    """The provider's registered name in ``lang`` (``zh`` or ``en``), if it is registered."""
    names = REGISTERED_NAMES.get(slug)
    return names[0 if lang == "zh" else 1] if names else None
