"""Test documents: passports (TD3), ID cards (TD1, TD2) and visas (MRV-A, MRV-B) rendered with Pillow, then degraded.

A render has a light gradient and guilloche-like background, a grey photo box, printed labels and values in DejaVu
and the machine readable zone in OCR-B (or, as some issuers print it, another monospaced font: `MRZ_FONTS`), built
from the fields with correct check digits. Degradations (all deterministic for a given seed) imitate scans and phone
photos: the card on a larger background, a small rotation, uneven lighting, a scale change, blur, noise and JPEG
compression, applied in that order. `tests.photos` adds what real uploads have on top (perspective, glare, holograms,
busy surroundings, small photos).

Needs the Debian packages fonts-ocr-b, fonts-dejavu-core, fonts-liberation2 and fonts-freefont-ttf (`make test`
installs them).
"""

from __future__ import annotations

import glob
import io
import math
import random
from dataclasses import dataclass, field
from datetime import date
from functools import cache

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from core.mrz.icao import check_digit

PX_PER_MM = 12  # base resolution of a render: a TD3 page is 1500 x 1056 px, its MRZ characters ~31 px tall
_OCRB_DIRS = ("/usr/share/fonts/opentype/ocr-b", "/usr/share/fonts/truetype/ocr-b", "/usr/share/fonts/ocr-b")
_DEJAVU_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu")
# MRZ fonts: OCR-B as ICAO 9303 prescribes, and monospaced fonts like those some issuers and visa printers use
# (file, Debian package).
MRZ_FONTS: dict[str, tuple[str, str]] = {
    "ocrb": ("OCRB.otf", "fonts-ocr-b"),
    "dejavu-mono": ("DejaVuSansMono.ttf", "fonts-dejavu-core"),
    "dejavu-mono-bold": ("DejaVuSansMono-Bold.ttf", "fonts-dejavu-core"),
    "liberation-mono": ("LiberationMono-Regular.ttf", "fonts-liberation2"),
    "freemono-bold": ("FreeMonoBold.ttf", "fonts-freefont-ttf"),
}


@cache
def _font_file(dirs: tuple[str, ...], name: str, package: str) -> str:
    for folder in dirs:
        found = sorted(glob.glob(f"{folder}/{name}"))
        if found:
            return found[0]
    found = sorted(glob.glob(f"/usr/share/fonts/**/{name}", recursive=True))
    if found:
        return found[0]
    raise FileNotFoundError(f"font {name} not found: install the Debian package {package}")


@cache
def _font(kind: str, size: int) -> ImageFont.FreeTypeFont:
    if kind == "ocrb":
        return ImageFont.truetype(_font_file(_OCRB_DIRS, "OCRB.otf", "fonts-ocr-b"), size)
    if kind in MRZ_FONTS:
        name, package = MRZ_FONTS[kind]
        return ImageFont.truetype(_font_file(("/usr/share/fonts/truetype",), name, package), size)
    name = "DejaVuSans-Bold.ttf" if kind == "bold" else "DejaVuSans.ttf"
    return ImageFont.truetype(_font_file(_DEJAVU_DIRS, name, "fonts-dejavu-core"), size)


def _mrz_field(value: str, width: int) -> str:
    text = value.upper().replace(" ", "<").replace("-", "<").replace(",", "")
    if len(text) > width:
        raise ValueError(f"{value!r} is longer than {width} characters")
    return text.ljust(width, "<")


def _yymmdd(day: date) -> str:
    return day.strftime("%y%m%d")


def _names(surname: str, given_names: str, width: int) -> str:
    joined = _mrz_field(surname, len(surname)) + "<<" + _mrz_field(given_names, len(given_names))
    return joined[:width].ljust(width, "<")


@dataclass(frozen=True)
class Person:
    """The printed and encoded fields of a document. Defaults are an invented person, not a real document."""

    surname: str = "ERIKSSON"
    given_names: str = "ANNA MARIA"
    document_number: str = "L898902C3"
    nationality: str = "NLD"
    issuing_country: str = "NLD"
    birth_date: date = date(1974, 8, 12)
    sex: str = "F"
    expiry_date: date = date(2032, 4, 15)
    optional_data: str = "ZE184226B"
    document_code: str = "P"
    extra: dict[str, str] = field(default_factory=dict)


def td3_lines(p: Person) -> list[str]:
    """The two 44-character lines of a passport (ICAO 9303 part 4), with check digits."""
    line1 = _mrz_field(p.document_code, 2) + _mrz_field(p.issuing_country, 3) + _names(p.surname, p.given_names, 39)
    number = _mrz_field(p.document_number, 9)
    birth, expiry = _yymmdd(p.birth_date), _yymmdd(p.expiry_date)
    optional = _mrz_field(p.optional_data, 14)
    optional_check = "<" if optional == "<" * 14 else check_digit(optional)
    line2 = (
        number
        + check_digit(number)
        + _mrz_field(p.nationality, 3)
        + birth
        + check_digit(birth)
        + _mrz_field(p.sex, 1)
        + expiry
        + check_digit(expiry)
        + optional
        + optional_check
    )
    composite = line2[0:10] + line2[13:20] + line2[21:43]
    return [line1, line2 + check_digit(composite)]


def td1_lines(p: Person) -> list[str]:
    """The three 30-character lines of an ID card (ICAO 9303 part 5), with check digits."""
    number = _mrz_field(p.document_number, 9)
    line1 = (
        _mrz_field(p.document_code, 2)
        + _mrz_field(p.issuing_country, 3)
        + number
        + check_digit(number)
        + _mrz_field(p.optional_data, 15)
    )
    birth, expiry = _yymmdd(p.birth_date), _yymmdd(p.expiry_date)
    line2 = (
        birth
        + check_digit(birth)
        + _mrz_field(p.sex, 1)
        + expiry
        + check_digit(expiry)
        + _mrz_field(p.nationality, 3)
        + "<" * 11
    )
    composite = line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]
    line2 += check_digit(composite)
    return [line1, line2, _names(p.surname, p.given_names, 30)]


def td2_lines(p: Person) -> list[str]:
    """The two 36-character lines of an ID card in TD2 format (ICAO 9303 part 6), with check digits."""
    line1 = _mrz_field(p.document_code, 2) + _mrz_field(p.issuing_country, 3) + _names(p.surname, p.given_names, 31)
    line2 = _long_line2(p, optional_width=7)
    return [line1, line2 + check_digit(line2[0:10] + line2[13:20] + line2[21:35])]


def mrva_lines(p: Person) -> list[str]:
    """The two 44-character lines of a full-size visa (MRV-A, ICAO 9303 part 7): no composite check digit."""
    line1 = _mrz_field(p.document_code, 2) + _mrz_field(p.issuing_country, 3) + _names(p.surname, p.given_names, 39)
    return [line1, _long_line2(p, optional_width=16)]


def mrvb_lines(p: Person) -> list[str]:
    """The two 36-character lines of a small visa (MRV-B, ICAO 9303 part 7): no composite check digit."""
    line1 = _mrz_field(p.document_code, 2) + _mrz_field(p.issuing_country, 3) + _names(p.surname, p.given_names, 31)
    return [line1, _long_line2(p, optional_width=8)]


def _long_line2(p: Person, *, optional_width: int) -> str:
    number = _mrz_field(p.document_number, 9)
    birth, expiry = _yymmdd(p.birth_date), _yymmdd(p.expiry_date)
    return (
        number
        + check_digit(number)
        + _mrz_field(p.nationality, 3)
        + birth
        + check_digit(birth)
        + _mrz_field(p.sex, 1)
        + expiry
        + check_digit(expiry)
        + _mrz_field(p.optional_data, optional_width)
    )


MRZ_LINES = {"TD1": td1_lines, "TD2": td2_lines, "TD3": td3_lines, "MRVA": mrva_lines, "MRVB": mrvb_lines}


# --- rendering --------------------------------------------------------------------------------------------------


def _mm(value: float) -> int:
    return round(value * PX_PER_MM)


def _background(
    width: int, height: int, rng: random.Random, tint: tuple[int, int, int], waves: bool = True
) -> Image.Image:
    """A light security-print background: a diagonal colour gradient crossed by thin guilloche waves."""
    gx = Image.linear_gradient("L").resize((width, height)).rotate(rng.uniform(20, 70))
    base = Image.new("RGB", (width, height), (248, 246, 240))
    tinted = Image.new("RGB", (width, height), tint)
    page = Image.composite(tinted, base, gx.point(lambda v: v * 0.55))
    draw = ImageDraw.Draw(page)
    colour = tuple(max(0, c - 35) for c in tint)
    for wave in range(rng.randint(9, 14) if waves else 0):
        amplitude = rng.uniform(0.02, 0.08) * height
        period = rng.uniform(0.15, 0.45) * width
        phase = rng.uniform(0, 2 * math.pi)
        y0 = rng.uniform(0, height)
        points = [
            (x, y0 + amplitude * math.sin(2 * math.pi * x / period + phase) + 0.3 * amplitude * math.sin(x / 37 + wave))
            for x in range(0, width + 8, 8)
        ]
        draw.line(points, fill=colour, width=max(1, PX_PER_MM // 6))
    return page


def _photo_box(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(box, fill=(168, 168, 168), outline=(120, 120, 120), width=2)
    cx, w = (x0 + x1) // 2, x1 - x0
    draw.ellipse((cx - w * 0.22, y0 + (y1 - y0) * 0.18, cx + w * 0.22, y0 + (y1 - y0) * 0.55), fill=(140, 140, 140))
    shoulders = (x0 + w * 0.12, y0 + (y1 - y0) * 0.6, x1 - w * 0.12, y1 + (y1 - y0) * 0.35)
    draw.pieslice(shoulders, 180, 360, fill=(140, 140, 140))


def _field(draw: ImageDraw.ImageDraw, x: int, y: int, label: str, value: str) -> int:
    draw.text((x, y), label, font=_font("sans", _mm(1.7)), fill=(70, 80, 120))
    draw.text((x, y + _mm(2.2)), value, font=_font("bold", _mm(2.6)), fill=(25, 25, 30))
    return y + _mm(6.4)


def _mrz(
    page: Image.Image,
    lines: list[str],
    left_mm: float,
    first_baseline_mm: float,
    spacing_mm: float,
    font_name: str = "ocrb",
    glyphs: dict[str, str] | None = None,
) -> None:
    """At 10 characters per inch (2.54 mm pitch), as ICAO 9303 prints the MRZ; OCR-B unless `font_name` says.
    `glyphs` prints some characters with another's glyph ({"O": "0"}: a printer whose O and 0 are one shape)."""
    reference = _font(font_name, 100)
    size = round(100 * _mm(2.54) / reference.getlength("<"))
    if font_name != "ocrb":  # other fonts: a cap height of at most about 2.4 mm, as OCR-B has, at the same pitch
        size = min(size, round(100 * _mm(2.4) / _cap_height(reference)))
    font = _font(font_name, size)
    draw = ImageDraw.Draw(page)
    pitch = font.getlength("<") if font_name == "ocrb" else _mm(2.54)
    for i, line in enumerate(lines):
        baseline = _mm(first_baseline_mm + i * spacing_mm)
        for j, char in enumerate(line):
            shown = (glyphs or {}).get(char, char)
            draw.text((_mm(left_mm) + j * pitch, baseline), shown, font=font, fill=(20, 20, 24), anchor="ls")


def _cap_height(font: ImageFont.FreeTypeFont) -> float:
    box = font.getbbox("H", anchor="ls")
    return float(box[3] - box[1])


def _date(day: date) -> str:
    return day.strftime("%d %b %Y").upper()


def _page_td3(
    p: Person,
    rng: random.Random,
    font: str = "ocrb",
    tint: tuple[int, int, int] = (214, 228, 222),
    glyphs: dict[str, str] | None = None,
) -> Image.Image:
    width, height = _mm(125), _mm(88)
    page = _background(width, height, rng, tint, waves=not glyphs)  # a look-alike printer: a clear MRZ zone
    draw = ImageDraw.Draw(page)
    draw.text((_mm(6), _mm(3.5)), "PASSPORT  PASSEPORT", font=_font("bold", _mm(3.2)), fill=(40, 50, 110))
    draw.text((_mm(80), _mm(4)), p.issuing_country, font=_font("bold", _mm(2.8)), fill=(40, 50, 110))
    _photo_box(draw, (_mm(6), _mm(12), _mm(38), _mm(54)))
    y = _mm(11)
    y = _field(
        draw,
        _mm(43),
        y,
        "Type / Type      Code / Code      Passport No. / No. du passeport",
        f"{p.document_code}            {p.issuing_country}            {p.document_number}",
    )
    y = _field(draw, _mm(43), y, "Surname / Nom", p.surname)
    y = _field(draw, _mm(43), y, "Given names / Prénoms", p.given_names)
    y = _field(draw, _mm(43), y, "Nationality / Nationalité", p.nationality)
    y = _field(
        draw,
        _mm(43),
        y,
        "Date of birth / Date de naissance          Sex / Sexe",
        f"{_date(p.birth_date)}                      {p.sex}",
    )
    _field(draw, _mm(43), y, "Date of expiry / Date d'expiration", _date(p.expiry_date))
    draw.text((_mm(8), _mm(57)), "Signature", font=_font("sans", _mm(1.7)), fill=(70, 80, 120))
    draw.line([(_mm(8), _mm(62)), (_mm(30), _mm(60)), (_mm(36), _mm(62))], fill=(30, 40, 90), width=3)
    _mrz(page, td3_lines(p), left_mm=6, first_baseline_mm=75.5, spacing_mm=6.2, font_name=font, glyphs=glyphs)
    return page


def _page_td1(
    p: Person, rng: random.Random, font: str = "ocrb", tint: tuple[int, int, int] = (226, 218, 236)
) -> Image.Image:
    width, height = _mm(85.6), _mm(54)
    page = _background(width, height, rng, tint)
    draw = ImageDraw.Draw(page)
    draw.text((_mm(4), _mm(2.5)), "IDENTITY CARD", font=_font("bold", _mm(2.8)), fill=(60, 40, 110))
    _photo_box(draw, (_mm(4), _mm(8), _mm(24), _mm(32)))
    y = _mm(7.5)
    y = _field(draw, _mm(28), y, "Surname / Nom", p.surname)
    y = _field(draw, _mm(28), y, "Given names / Prénoms", p.given_names)
    y = _field(
        draw,
        _mm(28),
        y,
        "Sex    Nationality    Date of birth",
        f"{p.sex}      {p.nationality}           {_date(p.birth_date)}",
    )
    _field(draw, _mm(28), y, "Document No.         Expiry", f"{p.document_number}     {_date(p.expiry_date)}")
    _mrz(page, td1_lines(p), left_mm=4.5, first_baseline_mm=39.5, spacing_mm=5.6, font_name=font)
    return page


# (width mm, height mm, title, left margin of the MRZ mm) of the two-line cards and visas
_CARDS = {
    "TD2": (105.0, 74.0, "IDENTITY CARD  CARTE D'IDENTITE", 6.5),
    "MRVA": (120.0, 80.0, "VISA", 4.0),
    "MRVB": (105.0, 74.0, "VISA", 6.5),
}


def _page_card(
    layout: str, p: Person, rng: random.Random, font: str = "ocrb", tint: tuple[int, int, int] = (222, 230, 214)
) -> Image.Image:
    """A TD2 card or an MRV-A / MRV-B visa: title, photo, a few printed fields, and the two MRZ lines."""
    width_mm, height_mm, title, left = _CARDS[layout]
    page = _background(_mm(width_mm), _mm(height_mm), rng, tint)
    draw = ImageDraw.Draw(page)
    draw.text((_mm(5), _mm(3)), title, font=_font("bold", _mm(3.0)), fill=(60, 50, 110))
    photo_bottom = height_mm - 32
    _photo_box(draw, (_mm(5), _mm(10), _mm(5 + photo_bottom * 0.75), _mm(10 + photo_bottom)))
    x, y = _mm(10 + photo_bottom * 0.75), _mm(9)
    y = _field(draw, x, y, "Surname / Nom", p.surname)
    y = _field(draw, x, y, "Given names / Prénoms", p.given_names)
    y = _field(draw, x, y, "Date of birth        Sex", f"{_date(p.birth_date)}     {p.sex}")
    if height_mm - 22 > y / PX_PER_MM + 6:
        _field(draw, x, y, "Number        Valid until", f"{p.document_number}     {_date(p.expiry_date)}")
    lines = MRZ_LINES[layout](p)
    _mrz(page, lines, left_mm=left, first_baseline_mm=height_mm - 12.5, spacing_mm=6.0, font_name=font)
    return page


def render_page(
    layout: str,
    person: Person,
    *,
    seed: int = 0,
    font: str = "ocrb",
    tint: tuple[int, int, int] | None = None,
) -> Image.Image:
    """The undegraded page of a document of any layout (TD1, TD2, TD3, MRVA, MRVB), its MRZ in `font`."""
    rng = random.Random(seed)
    if layout == "TD3":
        return _page_td3(person, rng, font, tint or (214, 228, 222))
    if layout == "TD1":
        return _page_td1(person, rng, font, tint or (226, 218, 236))
    return _page_card(layout, person, rng, font, tint or (222, 230, 214))


def _table(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """A phone-photo surrounding: a dark, textured table top with a little noise."""
    width, height = size
    base = rng.randint(60, 110)
    table = Image.linear_gradient("L").resize((width, height)).point(lambda v: base + v * 0.25)
    grain = Image.effect_noise((max(1, width // 4), max(1, height // 4)), 30).resize((width, height))
    table = Image.blend(table, grain, 0.25)
    return Image.merge("RGB", (table, table.point(lambda v: v * 0.85), table.point(lambda v: v * 0.7)))


def degrade(
    page: Image.Image,
    *,
    seed: int = 0,
    background: float = 0.0,
    rotate: float = 0.0,
    lighting: float = 0.0,
    scale: float = 1.0,
    blur: float = 0.0,
    noise: float = 0.0,
    jpeg: int | None = None,
) -> Image.Image:
    """Degrade a render like a scan or photo.

    background: place the card on a table this much larger (0.5: 50% margin around it); rotate: degrees,
    counter-clockwise; lighting: 0..1, how much darker the darkest corner of a multiplied gradient is; scale: resize
    factor; blur: Gaussian radius in px; noise: standard deviation of additive Gaussian noise in grey levels;
    jpeg: re-encode at this quality.
    """
    rng = random.Random(seed)
    image = page.convert("RGB")
    if background or rotate:
        margin = background if background else 0.0
        width, height = image.size
        outer = (round(width * (1 + margin)), round(height * (1 + margin)))
        if margin:
            canvas = _table(outer, rng)
        else:
            fill = image.getpixel((2, 2))
            assert isinstance(fill, tuple)
            canvas = Image.new("RGB", outer, fill)
        mask = Image.new("L", image.size, 255)
        if rotate:
            image = image.rotate(rotate, resample=Image.Resampling.BICUBIC, expand=True)
            mask = mask.rotate(rotate, resample=Image.Resampling.BICUBIC, expand=True)
        if canvas.width < image.width or canvas.height < image.height:
            canvas = canvas.resize((max(canvas.width, image.width), max(canvas.height, image.height)))
        slack_x, slack_y = canvas.width - image.width, canvas.height - image.height
        offset = (rng.randint(slack_x // 4, slack_x - slack_x // 4), rng.randint(slack_y // 4, slack_y - slack_y // 4))
        canvas.paste(image, offset, mask)
        image = canvas
    if lighting:
        image = _uneven_light(image, lighting, rng)
    if scale != 1.0:
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.LANCZOS
        )
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    if noise:
        image = _add_noise(image, noise, rng)
    if jpeg is not None:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=jpeg)
        buffer.seek(0)
        image = Image.open(buffer)
        image.load()
    return image


def _uneven_light(image: Image.Image, strength: float, rng: random.Random) -> Image.Image:
    """Multiply in a linear gradient in a random direction and a soft off-centre spotlight: a lamp beside the desk."""
    import numpy as np

    height, width = image.height, image.width
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    along = xs / width * math.cos(angle) + ys / height * math.sin(angle)
    along = (along - along.min()) / max(1e-6, float(along.max() - along.min()))
    cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
    spot = np.exp(-(((xs - cx) / width) ** 2 + ((ys - cy) / height) ** 2) / 0.18)
    shade = 1.0 - strength * (0.75 * along + 0.25 * (1.0 - spot))
    pixels = np.asarray(image, dtype=np.float32) * shade[..., None]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _add_noise(image: Image.Image, sigma: float, rng: random.Random) -> Image.Image:
    import numpy as np

    generator = np.random.default_rng(rng.randrange(2**32))
    pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels + generator.normal(0.0, sigma, pixels.shape[:2])[..., None]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def render_td3(
    person: Person | None = None, *, seed: int = 0, glyphs: dict[str, str] | None = None, **degradations: float
) -> Image.Image:
    """A passport data page for `person` (default: an invented one), degraded by `degrade(**degradations)`; `glyphs`
    as `_mrz` takes them."""
    rng = random.Random(seed)
    page = _page_td3(person or Person(), rng, glyphs=glyphs)
    return degrade(page, seed=seed, **degradations)  # type: ignore[arg-type]


def render_td1(person: Person | None = None, *, seed: int = 0, **degradations: float) -> Image.Image:
    """An ID card for `person` (default: an invented one, document code I), degraded by `degrade(**degradations)`."""
    rng = random.Random(seed)
    person = person or Person(document_code="I", document_number="D23145890", optional_data="")
    return degrade(_page_td1(person, rng), seed=seed, **degradations)  # type: ignore[arg-type]


PEOPLE = (
    Person(),
    Person(
        surname="MUSTERMANN",
        given_names="ERIKA",
        document_number="C01X00T47",
        nationality="D",
        issuing_country="D",
        birth_date=date(1964, 8, 12),
        expiry_date=date(2031, 10, 31),
        optional_data="",
    ),
    Person(
        surname="O'NEILL-SMITH".replace("'", ""),
        given_names="JOHN PATRICK",
        document_number="925076473",
        nationality="GBR",
        issuing_country="GBR",
        birth_date=date(1990, 1, 31),
        sex="M",
        expiry_date=date(2029, 12, 1),
        optional_data="",
    ),
    Person(
        surname="DUPONT",
        given_names="MARIE CLAIRE",
        document_number="18AB23456",
        nationality="FRA",
        issuing_country="FRA",
        birth_date=date(2001, 5, 6),
        sex="F",
        expiry_date=date(2034, 3, 9),
        optional_data="",
    ),
)
"""A few invented people with different name lengths, digits and letters in their numbers, and empty optional data."""

# O/0 and I/1 traps: two look-alikes at weights 7 and 3 (positions 3 and 4) change the check sum by a multiple of 10
# (O - 0 = 24, I - 1 = 17: 24 * 7 + 24 * 3 = 240, 17 * 10 = 170), so the check digits accept either reading. Rendered
# with TRAP_GLYPHS, the printer's zero is its O (and its one its I), and the nationality on the same line prints the
# letter: nothing on the document tells the two apart.
ZEROS_TRAP = Person(document_number="X12007345", nationality="POL", issuing_country="POL", optional_data="")
ONES_TRAP = Person(document_number="L02119245", nationality="IRL", issuing_country="IRL", optional_data="")
TRAP_GLYPHS = {"0": "O", "1": "I"}
