"""Realistic uploads of rendered documents: what phone photos and cheap scans of real documents look like.

`photograph(page, Shot(...))` takes a page from `tests.documents.render_page` and adds, in this order: a hologram
over part of the MRZ, the document on a surrounding (a table, or a busy desk with other print on it), perspective
and rotation, uneven light, a shadow, glare, the final size (600-1200 px wide), a little blur and noise, and JPEG.
`realistic_set(count)` draws documents (layouts, fonts, people, trap numbers, long names) and shots (`CONDITIONS`)
from one seed: the same count gives the same images on every machine.
"""

from __future__ import annotations

import colorsys
import dataclasses
import io
import math
import random
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from tests.documents import MRZ_FONTS, MRZ_LINES, Person, _font, _table, render_page


@dataclass(frozen=True)
class Shot:
    """How a document is photographed. Sizes are shares of the image, angles degrees."""

    width: int = 1100  # px, the final image's width
    surrounding: str = "none"  # none (a flat scan), table, busy
    margin: float = 0.0  # how much larger than the document the surrounding is
    rotate: float = 0.0
    perspective: float = 0.0  # how far each corner may move, as a share of the document's size
    lighting: float = 0.0  # 0..1, the darkest corner's loss
    shadow: float = 0.0  # 0..1, how dark a soft shadow across part of the document is
    glare: float = 0.0  # 0..1, how bright a specular highlight is (1: blown out in its centre)
    glare_on_mrz: bool = False
    hologram: float = 0.0  # 0..1, the opacity of a rainbow foil over part of the MRZ
    background: str = "plain"  # plain (the renderer's light guilloche), coloured, textured
    blur: float = 0.0
    noise: float = 0.0
    jpeg: int | None = 70


# (name, level, shot): level is clean, moderate or heavy; the targets speak of clean-to-moderate.
CONDITIONS: list[tuple[str, str, Shot]] = [
    ("scan", "clean", Shot(width=1100, jpeg=70)),
    ("photo 600px", "moderate", Shot(width=600, surrounding="table", margin=0.25, rotate=2.0, jpeg=60)),
    ("perspective", "moderate", Shot(width=900, surrounding="table", margin=0.35, rotate=5.0, perspective=0.05)),
    ("glare", "moderate", Shot(width=1000, surrounding="table", margin=0.2, glare=0.8, lighting=0.3)),
    ("shadow", "moderate", Shot(width=1000, surrounding="table", margin=0.2, shadow=0.55, lighting=0.4)),
    ("coloured", "moderate", Shot(width=800, background="coloured", jpeg=55)),
    ("textured", "moderate", Shot(width=900, background="textured", surrounding="table", margin=0.2, rotate=-1.5)),
    ("hologram", "moderate", Shot(width=1000, hologram=0.45, surrounding="table", margin=0.2)),
    ("jpeg 40", "moderate", Shot(width=800, jpeg=40, noise=4)),
    ("busy 1200px", "moderate", Shot(width=1200, surrounding="busy", margin=0.7, rotate=-2.5)),
    (
        "phone photo",
        "heavy",
        Shot(
            width=700, surrounding="busy", margin=0.4, rotate=4.0, perspective=0.05, lighting=0.4, glare=0.7,
            background="coloured", blur=0.6, noise=5, jpeg=50,
        ),
    ),
    (
        "small busy glare",
        "heavy",
        Shot(
            width=600, surrounding="busy", margin=0.5, rotate=-3.0, perspective=0.04, glare=0.9, glare_on_mrz=True,
            hologram=0.35, background="textured", jpeg=45,
        ),
    ),
]
LEVELS = ("clean", "moderate", "heavy")


def photograph(page: Image.Image, shot: Shot, *, seed: int = 0) -> Image.Image:
    rng = random.Random(seed)
    image = page.convert("RGB")
    if shot.background != "plain":
        image = _security_print(image, shot.background, rng)
    if shot.hologram:
        image = _hologram(image, shot.hologram, rng)
    mask = Image.new("L", image.size, 255)
    if shot.surrounding != "none" or shot.perspective or shot.rotate:
        image, mask = _place(image, shot, rng)
    if shot.lighting:
        image = _lighting(image, shot.lighting, rng)
    if shot.shadow:
        image = _shadow(image, shot.shadow, rng)
    if shot.glare:
        image = _glare(image, shot.glare, shot.glare_on_mrz, rng)
    height = round(image.height * shot.width / image.width)
    image = image.resize((shot.width, height), Image.Resampling.LANCZOS)
    if shot.blur:
        image = image.filter(ImageFilter.GaussianBlur(shot.blur))
    if shot.noise:
        generator = np.random.default_rng(rng.randrange(2**32))
        pixels = np.asarray(image, dtype=np.float32) + generator.normal(0, shot.noise, (height, shot.width, 1))
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    if shot.jpeg is not None:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=shot.jpeg)
        buffer.seek(0)
        image = Image.open(buffer)
        image.load()
    return image


# --- the document's own print ---------------------------------------------------------------------------------


def _security_print(page: Image.Image, style: str, rng: random.Random) -> Image.Image:
    """A saturated colour wash (coloured) or a dense rosette of fine lines all over, MRZ included (textured)."""
    width, height = page.size
    hue = rng.random()
    if style == "coloured":
        r, g, b = colorsys.hsv_to_rgb(hue, rng.uniform(0.25, 0.45), rng.uniform(0.8, 0.95))
        wash = Image.new("RGB", page.size, (round(r * 255), round(g * 255), round(b * 255)))
        return Image.fromarray(
            (np.asarray(page, dtype=np.float32) * np.asarray(wash, dtype=np.float32) / 255).astype(np.uint8)
        )
    layer = page.copy()
    draw = ImageDraw.Draw(layer)
    r, g, b = colorsys.hsv_to_rgb(hue, 0.5, 0.7)
    colour = (round(r * 255), round(g * 255), round(b * 255))
    cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
    for ring in range(36):
        radius = (ring + 1) * max(width, height) / 40
        points = []
        for step in range(0, 361, 3):
            t = math.radians(step)
            wobble = 1 + 0.06 * math.sin(12 * t + ring)
            points.append((cx + radius * wobble * math.cos(t), cy + radius * wobble * math.sin(t)))
        draw.line(points, fill=colour, width=2)
    return Image.blend(page, layer, 0.5)


def _hologram(page: Image.Image, opacity: float, rng: random.Random) -> Image.Image:
    """A rainbow foil (hue bands in a disc) over part of the MRZ, as laminates and visas have."""
    width, height = page.size
    size = round(height * rng.uniform(0.35, 0.5))
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    hue = ((xs + ys) / (size / 2.5) + rng.random()) % 1.0
    rgb = np.stack([np.vectorize(lambda h, k=k: colorsys.hsv_to_rgb(h, 0.6, 1.0)[k])(hue) for k in range(3)], -1)
    inside = ((xs - size / 2) ** 2 + (ys - size / 2) ** 2 <= (size / 2) ** 2).astype(np.float32)
    left = round(rng.uniform(0.1, 0.75) * (width - size))
    top = round(height - size * rng.uniform(0.75, 0.95))
    pixels = np.asarray(page, dtype=np.float32).copy()
    region = pixels[top : top + size, left : left + size]
    alpha = (opacity * inside[: region.shape[0], : region.shape[1]])[..., None]
    foil = rgb[: region.shape[0], : region.shape[1]] * 255
    pixels[top : top + size, left : left + size] = region * (1 - alpha) + np.maximum(region, foil) * alpha
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


# --- the photo ------------------------------------------------------------------------------------------------


def _busy(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """A desk: wood grain, a printed letter with lines of text, a coloured card and a barcode-like stripe."""
    width, height = size
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    grain = 0.5 + 0.5 * np.sin(ys / rng.uniform(6, 14) + 3 * np.sin(xs / rng.uniform(80, 200)))
    base = np.stack([110 + 50 * grain, 75 + 35 * grain, 45 + 20 * grain], -1)
    desk = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(desk)
    letter = (
        round(rng.uniform(-0.1, 0.4) * width),
        round(rng.uniform(-0.2, 0.3) * height),
    )
    paper = (letter[0], letter[1], letter[0] + round(width * 0.55), letter[1] + round(height * 0.9))
    draw.rectangle(paper, fill=(236, 234, 228))
    font = _font("sans", max(10, height // 45))
    y = paper[1] + 20
    words = ["ACCOUNT", "STATEMENT", "PAYMENT", "REFERENCE", "INVOICE", "TOTAL", "DATE", "1200", "EUR", "<<"]
    while y < paper[3] - 20:
        text = " ".join(rng.choice(words) for _ in range(rng.randint(4, 12)))
        draw.text((paper[0] + 20, y), text, font=font, fill=(40, 40, 45))
        y += round(font.size * 1.6)
    card_x, card_y = round(rng.uniform(0.5, 0.8) * width), round(rng.uniform(0.0, 0.6) * height)
    draw.rectangle((card_x, card_y, card_x + width // 4, card_y + height // 5), fill=(30, 90, 160))
    for i in range(40):
        x = round(width * 0.05) + i * 7
        draw.rectangle((x, height - 60, x + rng.randint(1, 4), height - 20), fill=(20, 20, 20))
    return desk


def _coefficients(source: list[tuple[float, float]], target: list[tuple[float, float]]) -> list[float]:
    """The 8 coefficients PIL's PERSPECTIVE transform takes to map `target` points back to `source` points."""
    rows, values = [], []
    for (x, y), (u, v) in zip(target, source, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        values += [u, v]
    return [float(c) for c in np.linalg.solve(np.array(rows), np.array(values))]


def _place(page: Image.Image, shot: Shot, rng: random.Random) -> tuple[Image.Image, Image.Image]:
    """The page on its surrounding, its corners moved (perspective) and turned (rotation)."""
    width, height = page.size
    outer = (round(width * (1 + shot.margin)), round(height * (1 + shot.margin)))
    if shot.surrounding == "busy":
        canvas = _busy(outer, rng)
    elif shot.surrounding == "table":
        canvas = _table(outer, rng)
    else:
        canvas = Image.new("RGB", outer, (238, 238, 236))
    left, top = (outer[0] - width) / 2, (outer[1] - height) / 2
    corners = [(0.0, 0.0), (width, 0.0), (width, height), (0.0, height)]
    angle = math.radians(shot.rotate * rng.choice((-1, 1)) * rng.uniform(0.6, 1.0))
    cx, cy = width / 2, height / 2
    target = []
    for x, y in corners:
        x += rng.uniform(-1, 1) * shot.perspective * width
        y += rng.uniform(-1, 1) * shot.perspective * height
        dx, dy = x - cx, y - cy
        target.append(
            (
                left + cx + dx * math.cos(angle) + dy * math.sin(angle),
                top + cy - dx * math.sin(angle) + dy * math.cos(angle),
            )
        )
    coefficients = _coefficients(corners, target)
    warped = page.transform(outer, Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BICUBIC)
    mask = Image.new("L", page.size, 255).transform(
        outer, Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BILINEAR
    )
    canvas.paste(warped, (0, 0), mask)
    return canvas, mask


def _lighting(image: Image.Image, strength: float, rng: random.Random) -> Image.Image:
    height, width = image.height, image.width
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    along = xs / width * math.cos(angle) + ys / height * math.sin(angle)
    along = (along - along.min()) / max(1e-6, float(along.max() - along.min()))
    pixels = np.asarray(image, dtype=np.float32) * (1.0 - strength * along)[..., None]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _shadow(image: Image.Image, strength: float, rng: random.Random) -> Image.Image:
    """A soft-edged shadow (a hand, a phone) over one side, its edge crossing the document at a slant."""
    width, height = image.size
    shade = Image.new("L", image.size, 0)
    draw = ImageDraw.Draw(shade)
    x0 = rng.uniform(0.3, 0.7) * width
    slant = rng.uniform(-0.3, 0.3) * width
    draw.polygon([(x0, 0), (width * 1.2, 0), (width * 1.2, height), (x0 + slant, height)], fill=255)
    if rng.random() < 0.5:
        shade = shade.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    shade = shade.filter(ImageFilter.GaussianBlur(width / 40))
    factor = 1.0 - strength * np.asarray(shade, dtype=np.float32)[..., None] / 255
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float32) * factor, 0, 255).astype(np.uint8), "RGB")


def _glare(image: Image.Image, strength: float, on_mrz: bool, rng: random.Random) -> Image.Image:
    """A specular highlight: an elongated bright spot, blown out to white at its centre when strong."""
    width, height = image.size
    cx = rng.uniform(0.25, 0.75) * width
    cy = (rng.uniform(0.72, 0.82) if on_mrz else rng.uniform(0.2, 0.6)) * height
    sx, sy = rng.uniform(0.06, 0.12) * width, rng.uniform(0.04, 0.08) * height
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    spot = np.exp(-(((xs - cx) / sx) ** 2 + ((ys - cy) / sy) ** 2) / 2)
    pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels + (255 * 1.6 * strength * spot)[..., None]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


# --- the documents --------------------------------------------------------------------------------------------

SURNAMES = [
    "ERIKSSON", "OKONKWO", "NGUYEN", "MUELLER", "DIALLO", "SILVA", "KOWALCZYK", "HAKKINEN", "OBRIEN", "ZHANG",
    "IBRAHIM", "PAPADOPOULOU", "FERNANDEZ", "SUZUKI", "OLIVEIRA", "BOOTH", "LI", "IVANOVA", "SZABO", "ODUYA",
]
GIVEN = [
    "ANNA", "MARIA", "JOHN", "LI", "OLUWASEUN", "IOANNA", "ZOE", "BOB", "SIOBHAN", "ISABEL", "OTTO", "ZSOFIA",
    "MIKKO", "SOO", "LIZ", "BOZO", "IBO",
]
COUNTRIES = ["NLD", "D", "GBR", "FRA", "NGA", "CHN", "BRA", "FIN", "GRC", "JPN", "ZAF", "SWE", "IRL", "UTO", "POL"]
CODES = {"TD1": ("I", "ID", "IR", "C"), "TD2": ("I", "ID", "AC"), "TD3": ("P", "PP", "PD"), "MRVA": ("V",),
         "MRVB": ("V", "VB")}
OPTIONAL_WIDTH = {"TD1": 15, "TD2": 7, "TD3": 14, "MRVA": 16, "MRVB": 8}
LAYOUTS = ("TD1", "TD2", "TD3", "MRVA", "MRVB")
ALNUM = "ABCDEFGHJKLMNPRTUVWXY0123456789"


@dataclass(frozen=True)
class Sample:
    name: str  # a label for reports: index, layout, condition, font
    layout: str
    condition: str
    level: str
    font: str
    trap: bool  # the document number is made of zeros and ones (look-alikes of O and I)
    person: Person
    lines: list[str]
    seed: int
    shot: Shot

    def image(self) -> Image.Image:
        return photograph(render_page(self.layout, self.person, seed=self.seed, font=self.font), self.shot,
                          seed=self.seed)


def _number(rng: random.Random, trap: bool) -> str:
    if trap:
        # all zeros and ones with a letter or digit at the ends: O/0 and I/1 misreads that check digits may not see
        body = "".join(rng.choice("0001") for _ in range(7))
        return rng.choice("ACLX") + body + rng.choice("0123456789")
    length = rng.choice((8, 9, 9, 9))
    return "".join(rng.choice(ALNUM) for _ in range(length))


def _person(rng: random.Random, layout: str, trap: bool, long_name: bool) -> Person:
    today = date(2026, 12, 1)
    if long_name:
        surname = " ".join(rng.sample(SURNAMES, 2))
        given = " ".join(rng.sample(GIVEN, 4))
    else:
        surname = rng.choice(SURNAMES)
        given = " ".join(rng.sample(GIVEN, rng.choice((1, 1, 2))))
    optional = ""
    if rng.random() < 0.4:
        optional = "".join(rng.choice(ALNUM) for _ in range(rng.randint(3, min(9, OPTIONAL_WIDTH[layout]))))
    country = rng.choice(COUNTRIES)
    return Person(
        surname=surname,
        given_names=given,
        document_number=_number(rng, trap),
        nationality=country if rng.random() < 0.8 else rng.choice(COUNTRIES),
        issuing_country=country,
        birth_date=today - timedelta(days=rng.randint(18 * 365, 80 * 365)),
        sex=rng.choice("MFF<"),
        expiry_date=today + timedelta(days=rng.randint(30, 10 * 365)),
        optional_data=optional,
        document_code=rng.choice(CODES[layout]),
    )


def realistic_set(count: int, *, seed: int = 13) -> list[Sample]:
    """`count` documents: layouts and conditions in turn, fonts drawn (half OCR-B), one in four a trap number,
    one in five a long name cut at the field's width."""
    rng = random.Random(seed)
    fonts = [name for name in MRZ_FONTS if name != "ocrb"]
    samples = []
    for index in range(count):
        layout = LAYOUTS[index % len(LAYOUTS)]
        condition, level, shot = CONDITIONS[(index // len(LAYOUTS) + index % len(LAYOUTS)) % len(CONDITIONS)]
        font = "ocrb" if rng.random() < 0.5 else rng.choice(fonts)
        trap = rng.random() < 0.25
        person = _person(rng, layout, trap, long_name=rng.random() < 0.2)
        lines = MRZ_LINES[layout](person)
        name = f"{index:03d} {layout} {condition} {font}"
        samples.append(Sample(name, layout, condition, level, font, trap, person, lines, seed * 1000 + index, shot))
    return samples


def with_shot(sample: Sample, condition: str) -> Sample:
    """The same document photographed under another of the CONDITIONS."""
    name, level, shot = next(entry for entry in CONDITIONS if entry[0] == condition)
    return dataclasses.replace(sample, condition=name, level=level, shot=shot)
