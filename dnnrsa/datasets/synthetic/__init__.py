"""Procedurally rendered stand-ins for KDEF, FER2013, CelebA and UC Merced.

The real image sets cannot be downloaded, so dnnrsa ships a small 3-D face renderer and
an aerial-texture generator that make sets with the same factor structure:

* :func:`synthetic_faces` -- the KDEF-like test set: identities x expressions x
  viewpoints x sessions, one image per cell.
* :func:`synthetic_expressions` -- a FER2013-like training set (expression labels,
  thousands of identities seen once or a few times, random yaw and nuisance).
* :func:`synthetic_identities` -- a CelebA-like training set (identity labels, many
  images of each identity under random expression, yaw and nuisance).
* :func:`synthetic_scenes` -- a UC-Merced-like set of 21 aerial scene classes.

How a face is made
------------------
A head lives in a head-centred frame (x to the image right of a frontal face, y up,
z towards the camera of a frontal face; one unit is about half the head width, y = 0 at
eye level). It is a union of smooth primitives whose horizontal cross-sections are
ellipses: the skull and face (with separate front and back depth profiles: forehead,
face plane, jaw taper), a muzzle carrying the lips and chin, a nose that grows from the
bridge to the tip, two ears, a neck and a hair shell that hugs the skull (long hair is
worn tied back, lying on the nape, so no hair frames or covers the face). The head turns
about the vertical axis by the yaw angle (positive yaw: the nose points to the image
right; ``"HL"`` = -45 degrees shows the left cheek with the nose pointing left, as in
KDEF's half-left pictures) and is seen in orthographic projection. Because a yaw turn
keeps every pixel row at one height of the head, each primitive is intersected with each
pixel's ray in closed form, and the front-most hit wins, so self-occlusion (the nose
hiding the far cheek, the far eye vanishing at 90 degrees) is exact.

Eyes with lids, irises and lashes, brows, nostrils, lips, mouth opening and teeth,
wrinkles, hair line and shading hollows are painted in head-frame coordinates on the
surface, and cheeks, eye sockets and brow ridge are bump-mapped, so all of them turn with
the head. Shading is Lambertian from a light fixed in the camera frame plus ambient
light; a slight blur and pixel noise finish the picture.

*Identity* is about forty shape and albedo parameters (head width, height and depth, jaw
width and squareness, eye spacing and size, brow height and thickness, nose length,
width and protrusion, mouth width, lip thickness, chin, skin and hair albedo, hair line,
length and volume, ears). Women and men differ on average (longer hair, thinner brows,
narrower jaw, smaller nose) but the distributions overlap. Identity lives mostly in the
3-D shape and proportions and in the painted and bump-mapped detail, which change their
appearance as the head turns; skin and hair albedo, hair volume and neck width vary only
as much as across the people of one real set such as KDEF (one population, no hair over
the face), so the outline and the overall brightness alone say little about who it is.
*Expression* is a mix of facial actions (brow raise, inner brow raise, brow lowering and
knitting, upper-lid raise, lid tightening, cheek raise, nose wrinkle, upper-lip raise,
lip-corner pull and depression, lip stretch, lip press, jaw drop, chin raise); each
identity shows each action at its own intensity (0.7 to 1.2 times the prototype).

Photographic conditions are never a property of a person. In the KDEF-like set a
*session* is one set-up of the studio for everyone photographed in it: key light
direction (within 3 degrees of the other session's) and intensity (3 %), ambient light,
background grey and sensor noise level. Within a session, every single picture has its
own position (about half a pixel at 48 x 48), scale (about 1 %) and exposure (about
4 %), drawn independently. The training sets draw all of these much more widely for
every picture, like pictures from the wild; their faces are mostly near-frontal (yaw
within +-``yaw_jitter``) with a minority (``turned``) turned up to +-60 degrees, as in
FER2013 and CelebA, while the KDEF-like test views are at +-45 degrees.

Random streams
--------------
Every generator draws from ``numpy.random.SeedSequence(seed, spawn_key=(stream, ...))``
with its own stream number (``faces``, ``expressions`` train, ``expressions`` test,
``identities``, ``scenes``), so for one ``seed`` the people of :func:`synthetic_faces`,
of the two splits of :func:`synthetic_expressions` and of :func:`synthetic_identities`
are different people: a network trained on one set is never tested on its own training
identities. Within a generator, a person (and for :func:`synthetic_faces` also each
person's pictures in each session, and each session's studio set-up) has its own child
stream, so asking for fewer expressions, viewpoints or identities gives exactly the
corresponding subset of the bigger set. Everything is deterministic: the same arguments give bit-identical images,
and :data:`DATA_VERSION` numbers what they are.

Where things are
----------------
``_vocabulary`` (factor codes, stream numbers), ``_actions`` (facial actions and the
expression prototypes), ``_identity`` (the identity model), ``_noise`` (coverage ramps,
hash noise, blur), ``_shape`` (the primitives and ray intersections), ``_paint`` (hair
line, facial features, bump map), ``_renderer`` (ray casting, shading, batching),
``_sampling`` (argument checks, people and nuisance draws), ``_faces`` (the three face
sets) and ``_scenes`` (the aerial scenes).
"""

from __future__ import annotations

from ._faces import synthetic_expressions, synthetic_faces, synthetic_identities
from ._scenes import synthetic_scenes
from ._vocabulary import EXPRESSION_NAMES, EXPRESSIONS, SCENE_CLASSES, SESSIONS, VIEWPOINTS

__all__ = [
    "DATA_VERSION",
    "EXPRESSIONS",
    "EXPRESSION_NAMES",
    "VIEWPOINTS",
    "SESSIONS",
    "SCENE_CLASSES",
    "synthetic_faces",
    "synthetic_expressions",
    "synthetic_identities",
    "synthetic_scenes",
]

# Version of the synthetic data. Increase it with any change that alters the images or
# metadata a synthetic generator gives for the same arguments (renderer, parameter
# distributions, random streams, column values or dtypes): trained-model checkpoints
# record it and refuse to be confused with networks trained on other synthetic data.
DATA_VERSION = 2
