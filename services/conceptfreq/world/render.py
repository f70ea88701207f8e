"""Drawing a concept: each concept has a visual identity (shape, colour, texture, the texture's
colour, part) and every instance is drawn under nuisance variation (position, scale, rotation,
colour jitter), on a cluttered, noisy background. Pure numpy on a pixel grid, so it is fast and bit-for-bit the same for
the same random state on every machine.

The identity is what a model has to learn to tie to a name; the attributes are shared between
concepts (many concepts are red, many are stars), so no single attribute gives a concept away and
a model must see a concept's own examples to know its combination. Any two identities differ in at
least two attributes: with three, a 40-concept world in a tuning run became so easy that concepts seen in 60 pairs
were recognised as well as those seen in 10,000, and accuracy no longer depended on frequency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHAPES = ("circle", "square", "triangle", "diamond", "hexagon", "star", "cross", "ring")
# Well-separated hues, still distinct after JPEG and colour jitter.
COLOURS = {
    "red": (215, 40, 40), "orange": (245, 140, 20), "yellow": (235, 215, 30), "green": (40, 170, 60),
    "cyan": (30, 200, 210), "blue": (40, 70, 220), "purple": (140, 50, 190), "pink": (245, 120, 190),
}
TEXTURES = ("solid", "stripes", "dots", "checker")
PARTS = ("none", "eye", "border", "bar")
# The texture is drawn in a second colour ("dark" is the body colour at half brightness).
PATTERN_COLOURS = {**COLOURS, "dark": None, "white": (250, 250, 250)}
ATTRIBUTES = {"shape": SHAPES, "colour": tuple(COLOURS), "texture": TEXTURES, "pattern": tuple(PATTERN_COLOURS), "part": PARTS}


@dataclass(frozen=True)
class Identity:
    shape: str
    colour: str
    texture: str
    pattern: str
    part: str

    def to_json(self) -> dict:
        return {name: getattr(self, name) for name in ATTRIBUTES}

    def distance(self, other: "Identity") -> int:
        return sum(getattr(self, a) != getattr(other, a) for a in ATTRIBUTES)


def _valid(identity: Identity) -> bool:
    # A pattern in the body's own colour would be invisible; a solid body has no pattern to colour.
    if identity.texture == "solid":
        return identity.pattern == "dark"
    return identity.pattern != identity.colour


def identities(n: int, rng: np.random.Generator, min_distance: int = 2) -> list[Identity]:
    """n identities, any two differing in at least `min_distance` attributes, so that no concept is
    one or two attributes away from another and confusable by a nuisance (a colour shift, a hidden part)."""
    chosen: list[Identity] = []
    for _ in range(500 * n):
        if len(chosen) == n:
            break
        candidate = Identity(*(values[rng.integers(len(values))] for values in ATTRIBUTES.values()))
        if _valid(candidate) and all(candidate.distance(c) >= min_distance for c in chosen):
            chosen.append(candidate)
    if len(chosen) < n:
        raise ValueError(f"cannot make {n} identities {min_distance} attributes apart; use fewer concepts")
    return chosen


def _inside(shape: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Membership in the unit shape, in the object's own coordinates (about [-1, 1])."""
    r = np.hypot(x, y)
    if shape == "circle":
        return r <= 0.95
    if shape == "square":
        return np.maximum(abs(x), abs(y)) <= 0.78
    if shape == "triangle":
        return (y <= 0.7) & (y >= -0.9 + 1.6 * abs(x) * 1.15)
    if shape == "diamond":
        return abs(x) + abs(y) <= 1.0
    if shape == "hexagon":
        return (abs(y) <= 0.82) & (abs(x) * 0.866 + abs(y) * 0.5 <= 0.82)
    if shape == "star":
        angle = np.arctan2(y, x)
        return r <= 0.45 + 0.5 * (0.5 + 0.5 * np.cos(5 * angle))
    if shape == "cross":
        return ((abs(x) <= 0.3) & (abs(y) <= 0.95)) | ((abs(y) <= 0.3) & (abs(x) <= 0.95))
    if shape == "ring":
        return (r <= 0.95) & (r >= 0.5)
    raise ValueError(f"unknown shape {shape!r}")


def _texture(texture: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Where the texture darkens the colour (bool), in object coordinates, so it turns with the object."""
    if texture == "solid":
        return np.zeros_like(x, dtype=bool)
    if texture == "stripes":
        return np.sin(x * 9.0) > 0.3
    if texture == "dots":
        return (np.hypot(((x * 3.2) % 1.0) - 0.5, ((y * 3.2) % 1.0) - 0.5)) < 0.25
    if texture == "checker":
        return (np.floor(x * 2.6) + np.floor(y * 2.6)) % 2 == 0
    raise ValueError(f"unknown texture {texture!r}")


def _part(part: str, x: np.ndarray, y: np.ndarray, body: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A small feature in a contrasting colour: (mask, colour)."""
    if part == "none":
        return np.zeros_like(body), (0, 0, 0)
    if part == "eye":
        return np.hypot(x - 0.1, y + 0.15) <= 0.24, (255, 255, 255)
    if part == "border":
        # The outline: inside the body but not inside a slightly shrunk copy of it.
        return body & ~_shrunk(body), (20, 20, 20)
    if part == "bar":
        return body & (abs(y) <= 0.13), (250, 250, 250)
    raise ValueError(f"unknown part {part!r}")


def _shrunk(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return inner


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A muted, noisy background with clutter (thin lines and small grey blobs), float (H, W, 3)."""
    base = rng.uniform(90, 170) + rng.uniform(-15, 15, 3)
    canvas = np.broadcast_to(base, (size, size, 3)).astype(np.float32).copy()
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    gradient = rng.uniform(-0.3, 0.3, 2)
    canvas += ((xx - size / 2) * gradient[0] + (yy - size / 2) * gradient[1])[..., None]
    for _ in range(int(rng.integers(1, 4))):
        # A line: points near a random straight line through the image.
        angle, offset = rng.uniform(0, np.pi), rng.uniform(-size / 3, size / 3)
        distance = abs((xx - size / 2) * np.sin(angle) - (yy - size / 2) * np.cos(angle) - offset)
        canvas[distance < 0.8] = rng.uniform(40, 210)
    for _ in range(int(rng.integers(0, 3))):
        cx, cy, radius = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(1.5, 4)
        canvas[np.hypot(xx - cx, yy - cy) < radius] = rng.uniform(50, 200)
    return canvas


def draw(canvas: np.ndarray, identity: Identity, rng: np.random.Generator, centre: tuple[float, float], radius: float) -> None:
    """Draw one instance of `identity` onto `canvas` (float (H, W, 3)) in place."""
    size = canvas.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    cos, sin = np.cos(angle), np.sin(angle)
    dx, dy = (xx - centre[0]) / radius, (yy - centre[1]) / radius
    x, y = cos * dx + sin * dy, -sin * dx + cos * dy
    body = _inside(identity.shape, x, y)
    colour = np.asarray(COLOURS[identity.colour], np.float32) * rng.uniform(0.85, 1.15) + rng.uniform(-12, 12, 3)
    canvas[body] = colour
    pattern = body & _texture(identity.texture, x, y)
    second = PATTERN_COLOURS[identity.pattern]
    canvas[pattern] = colour * 0.45 if second is None else np.asarray(second, np.float32) * rng.uniform(0.85, 1.15)
    mask, part_colour = _part(identity.part, x, y, body)
    canvas[mask] = part_colour


def finish(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise and clipping: uint8 (H, W, 3)."""
    noisy = canvas + rng.normal(0, rng.uniform(3, 10), canvas.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def layout(rng: np.random.Generator, n: int, size: int) -> list[tuple[tuple[float, float], float]]:
    """(centre, radius) of n instances: one per cell of a 2x2 grid (a random choice of cells), jittered,
    so instances rarely hide each other; one instance may take the whole image."""
    if n == 1:
        radius = rng.uniform(0.2, 0.36) * size
        margin = radius * 0.8
        return [((rng.uniform(margin, size - margin), rng.uniform(margin, size - margin)), radius)]
    cells = rng.permutation(4)[:n]
    half = size / 2
    placed = []
    for cell in cells:
        radius = rng.uniform(0.15, 0.23) * size
        cx = (cell % 2) * half + half / 2 + rng.uniform(-0.12, 0.12) * size
        cy = (cell // 2) * half + half / 2 + rng.uniform(-0.12, 0.12) * size
        placed.append(((cx, cy), radius))
    return placed


def render(identities_shown: list[Identity], rng: np.random.Generator, size: int) -> np.ndarray:
    """An image of the given instances (1-4) on a cluttered background: uint8 (H, W, 3)."""
    canvas = background(rng, size)
    for identity, (centre, radius) in zip(identities_shown, layout(rng, len(identities_shown), size)):
        draw(canvas, identity, rng, centre, radius)
    return finish(canvas, rng)
