"""The time-zone menu: one zone per place people live, by region, and which old names stand for it.

Offered are the zones of tzdata's ``zone.tab`` (one line per country and region: ``Asia/Kolkata``,
``Europe/Kyiv``, never their old aliases ``Asia/Calcutta``, ``Europe/Kiev``), plus UTC, each labelled
with its place and country (``iso3166.tab``). Both files come with the ``tzdata`` package, a
dependency, so the menu is the same on every machine and needs nothing at run time.

Every IANA name stays accepted when posted (:func:`digest.delivery.schedule.is_valid_timezone`):
the menu is only what is offered. A name that is not offered maps to the zone whose rules it
shares — tzdata's own link target: the one zone of ``zone1970.tab`` with byte-identical data — so
that a browser that reports ``Asia/Calcutta`` gets ``Asia/Kolkata`` preselected, and a subscriber
stored under an old name sees their zone chosen on the preferences page.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

from digest.delivery.schedule import timezone_names

UTC = "UTC"


class Zone(NamedTuple):
    value: str  # the IANA name posted
    label: str  # "Kolkata (India)"
    aliases: str  # the names not offered that stand for this zone, space-separated ("Asia/Calcutta")


def _tzdata(*path: str):
    return resources.files("tzdata").joinpath("zoneinfo", *path)


def _table(name: str) -> list[list[str]]:
    """The rows of one of tzdata's ``.tab`` files, without comments."""
    text = _tzdata(name).read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


def _data(name: str) -> bytes | None:
    try:
        return _tzdata(*name.split("/")).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


@lru_cache(maxsize=1)
def offered() -> dict[str, str]:
    """The zones offered, each with its label ("Kolkata (India)"), UTC first."""
    countries = {code: country for code, country in _table("iso3166.tab")}
    valid = timezone_names()
    zones = {UTC: UTC}
    for codes, _coordinates, name, *_comment in _table("zone.tab"):
        if name in valid:
            place = name.partition("/")[2].replace("_", " ").replace("/", " / ")
            zones[name] = f"{place} ({countries.get(codes, codes)})"
    return zones


@lru_cache(maxsize=1)
def aliases() -> dict[str, str]:
    """Each valid name that is not offered → the offered zone with the same rules, where one is certain."""
    zones = offered()
    canonical = {row[2] for row in _table("zone1970.tab")} | {UTC}
    by_data: dict[bytes, list[str]] = defaultdict(list)
    for name in zones:
        if (data := _data(name)) is not None:
            by_data[data].append(name)
    mapping = {}
    for name in sorted(timezone_names() - zones.keys()):
        same = by_data.get(_data(name) or b"", [])
        if len(same) > 1:  # several zones of one country region share these rules: tzdata's link target
            same = [zone for zone in same if zone in canonical]
        if len(same) == 1:
            mapping[name] = same[0]
    return mapping


def menu_zone(name: str | None) -> str | None:
    """The menu's entry for ``name``: itself when offered, the zone it stands for, or None."""
    if name in offered():
        return name
    return aliases().get(name or "")


@lru_cache(maxsize=1)
def timezone_choices() -> dict[str, list[Zone]]:
    """The offered zones grouped by region for a ``<select>`` with optgroups (UTC first, alone)."""
    stands_for: dict[str, list[str]] = defaultdict(list)
    for alias, zone in aliases().items():
        if zone != UTC:  # the script preselects only over UTC: "Etc/UTC" needs no mapping
            stands_for[zone].append(alias)
    groups: dict[str, list[Zone]] = {"": []}
    for name, label in sorted(offered().items(), key=lambda item: (item[0] != UTC, item[0].partition("/")[0], item[1])):
        region = name.partition("/")[0] if "/" in name else ""
        groups.setdefault(region, []).append(Zone(name, label, " ".join(sorted(stands_for[name]))))
    return groups
