"""The words of the synthetic sets: the public factor codes (expressions, viewpoints,
sessions, scene classes) and the private constants every generator shares (random-stream
numbers, sex names, the smallest image)."""

from __future__ import annotations

#: KDEF expression codes, in KDEF's order.
EXPRESSIONS = ("AF", "AN", "DI", "HA", "NE", "SA", "SU")
#: Long names of the expression codes.
EXPRESSION_NAMES = {
    "AF": "afraid",
    "AN": "angry",
    "DI": "disgusted",
    "HA": "happy",
    "NE": "neutral",
    "SA": "sad",
    "SU": "surprised",
}
#: KDEF viewpoint codes and their yaw in degrees (negative: the nose points to the image
#: left, as in KDEF's half-left ``HL`` and full-left ``FL`` pictures).
VIEWPOINTS = {"FL": -90.0, "HL": -45.0, "S": 0.0, "HR": 45.0, "FR": 90.0}
#: KDEF photo sessions.
SESSIONS = ("A", "B")
#: The 21 UC Merced land-use classes, in the data set's (alphabetical) order.
SCENE_CLASSES = (
    "agricultural",
    "airplane",
    "baseballdiamond",
    "beach",
    "buildings",
    "chaparral",
    "denseresidential",
    "forest",
    "freeway",
    "golfcourse",
    "harbor",
    "intersection",
    "mediumresidential",
    "mobilehomepark",
    "overpass",
    "parkinglot",
    "river",
    "runway",
    "sparseresidential",
    "storagetanks",
    "tenniscourt",
)

# The viewpoint codes from left to right profile: the canonical order of rows and of the
# viewpoint levels (KDEF's own order, too).
_VIEW_ORDER = tuple(sorted(VIEWPOINTS, key=VIEWPOINTS.get))

# Stream numbers of the generators (part of every SeedSequence's spawn key). Changing
# them changes every image: treat them as part of the data format.
_STREAMS = {
    "faces": 11,
    "expressions_train": 21,
    "expressions_test": 22,
    "identities": 31,
    "scenes": 41,
}
_SEXES = ("female", "male")
_MIN_SIZE = 16
