"""Location indexing (pure): reading a device's last reported location in
the formats AWS's fleet indexing accepts, and the two geoqueries.

Location formats (the field named by a `geoLocations` target; `order` says
how to read the ambiguous ones, LatLon by default):
- WKT: "POINT(lon lat)" (always longitude first);
- a string "lat, lon" (or "lon, lat" with order LonLat);
- an object with lat/latitude and lon/long/longitude keys;
- an array [lat, lon] (or [lon, lat] with order LonLat);
- a GeoJSON-style object whose "coordinates" is such an array.

Queries, written as the value of the location field:
    <field>:geo_distance,<lat>,<lon>,<distance><unit>        (units km, m, cm, mm, mi, yd, ft, in, nmi; m when none)
    <field>:geo_bounding_box,<top lat>,<left lon>,<bottom lat>,<right lon>
"""

from __future__ import annotations

import math
import re

EARTH_RADIUS_M = 6371008.8  # mean radius, as Lucene's haversine
UNITS = {"km": 1000.0, "m": 1.0, "cm": 0.01, "mm": 0.001, "mi": 1609.344, "miles": 1609.344, "yd": 0.9144,
         "ft": 0.3048, "in": 0.0254, "nmi": 1852.0, "NM": 1852.0}
_WKT = re.compile(r"^\s*POINT\s*\(\s*(\S+)\s+(\S+)\s*\)\s*$", re.IGNORECASE)
_DISTANCE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*$")
LAT_KEYS, LON_KEYS = ("lat", "latitude"), ("lon", "long", "longitude")
GEO_QUERIES = ("geo_distance", "geo_bounding_box")


class GeoError(ValueError):
    pass


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _valid(lat, lon) -> tuple[float, float] | None:
    if lat is None or lon is None or not (-90 <= lat <= 90) or not (-180 <= lon <= 180):
        return None
    return lat, lon


def point(value, order: str = "LatLon") -> tuple[float, float] | None:
    """(lat, lon) of a reported location, or None when it is not one."""
    lon_first = order == "LonLat"
    if isinstance(value, str):
        wkt = _WKT.match(value)
        if wkt:
            return _valid(_number(wkt.group(2)), _number(wkt.group(1)))
        parts = value.split(",")
        if len(parts) != 2:
            return None
        a, b = _number(parts[0].strip()), _number(parts[1].strip())
        return _valid(b, a) if lon_first else _valid(a, b)
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            return None
        a, b = _number(value[0]), _number(value[1])
        return _valid(b, a) if lon_first else _valid(a, b)
    if isinstance(value, dict):
        if "coordinates" in value:
            return point(value["coordinates"], order)
        lat = next((_number(value[k]) for k in LAT_KEYS if k in value), None)
        lon = next((_number(value[k]) for k in LON_KEYS if k in value), None)
        return _valid(lat, lon)
    return None


def encode(p: tuple[float, float]) -> str:
    return f"{p[0]!r},{p[1]!r}"


def decode(text: str) -> tuple[float, float]:
    lat, lon = text.split(",")
    return float(lat), float(lon)


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle (haversine) distance in metres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def is_geo_query(value: str) -> bool:
    return value.split(",", 1)[0].strip() in GEO_QUERIES


def _coordinate(text: str, what: str, limit: float) -> float:
    number = _number(text.strip())
    if number is None or not -limit <= number <= limit:
        raise GeoError(f"{what} {text.strip()!r} is not a number between {-limit:g} and {limit:g}.")
    return number


def compile_geo(value: str):
    """A predicate on (lat, lon) for a geoquery value, or GeoError saying what is wrong."""
    kind, *args = [part for part in value.split(",")]
    kind = kind.strip()
    if kind == "geo_distance":
        if len(args) != 3:
            raise GeoError("geo_distance takes a latitude, a longitude and a distance: "
                           "geo_distance,<lat>,<lon>,<distance>.")
        center = (_coordinate(args[0], "Latitude", 90), _coordinate(args[1], "Longitude", 180))
        match = _DISTANCE.match(args[2])
        if not match or (match.group(2) and match.group(2) not in UNITS):
            raise GeoError(f"Distance {args[2].strip()!r} is not a number with a unit ({', '.join(UNITS)}).")
        radius = float(match.group(1)) * UNITS[match.group(2) or "m"]
        return lambda p: distance_m(center, p) <= radius
    if kind == "geo_bounding_box":
        if len(args) != 4:
            raise GeoError("geo_bounding_box takes the top-left and bottom-right corners: "
                           "geo_bounding_box,<top lat>,<left lon>,<bottom lat>,<right lon>.")
        top, left = _coordinate(args[0], "Latitude", 90), _coordinate(args[1], "Longitude", 180)
        bottom, right = _coordinate(args[2], "Latitude", 90), _coordinate(args[3], "Longitude", 180)
        if top < bottom:
            raise GeoError(f"The top latitude {top:g} is below the bottom latitude {bottom:g}.")
        if left <= right:
            return lambda p: bottom <= p[0] <= top and left <= p[1] <= right
        return lambda p: bottom <= p[0] <= top and (p[1] >= left or p[1] <= right)  # across the antimeridian
    raise GeoError(f"Unknown geoquery {kind!r}; use one of {', '.join(GEO_QUERIES)}.")


def value_at(shadow: dict, field: str):
    """The raw value of `field` (shadow.reported.x.y / shadow.name.N.reported.x) in a shadow view."""
    parts = field.split(".")[1:]
    node = shadow
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def field_key(field: str) -> str:
    """Where a document keeps the parsed location of `field` ("lat,lon")."""
    return f"{field}#geo"


def latitude_key(field: str) -> str:
    """Where a document keeps the latitude alone (a number: ordered index entries narrow geoqueries)."""
    return f"{field}#geo.lat"


def latitude_band(value: str) -> tuple[float, float]:
    """The latitudes a geoquery can match at most (a checked query)."""
    kind, *args = value.split(",")
    if kind.strip() == "geo_bounding_box":
        return float(args[2]), float(args[0])
    match = _DISTANCE.match(args[2])
    degrees = float(match.group(1)) * UNITS[match.group(2) or "m"] / (EARTH_RADIUS_M * math.pi / 180)
    lat = float(args[0])
    return max(-90.0, lat - degrees * 1.001), min(90.0, lat + degrees * 1.001)
