"""The natural pictures the video SR corpus pans over: which, from where, and their split.

Debian's desktop wallpaper packages ship high-resolution photographs and illustrations
(installed by `scripts/setup.sh --video-sr-corpus`, read from disk, never committed);
scikit-image and scikit-learn ship a few sample photos inside their wheels. The list is
the record of what the house models trained on and what was held out, with each
source's licence (from the package's copyright file):

- mate-backgrounds 1.26: GPL-2+ (the nature photos, by their photographers, 2005-2008);
- plasma-workspace-wallpapers 5.27: GPL-2+ (KDE Visual Design Group and contributors);
- ukui-wallpapers 20.04: CC-BY-SA-3.0 (Ubuntu Kylin community);
- gnome-backgrounds 43: CC-BY-SA-3.0 (Jakub Steiner and others);
- scikit-image's data: public domain or CC0, as each photo's loader states;
- scikit-learn's china.jpg and flower.jpg: CC-BY 2.0, as its images/README.txt states.

Nothing is redistributed: pictures are read where the packages put them, and the
corpus made from them stays out of the repository.

Held out (never trained on), whole pictures chosen for variety: a cat's face (chelsea),
an insect on leaves (LadyBird), sky with a small object (Kite), a fine texture (moss,
OneStandsOut), hard man-made edges (boats and a jetty, EveningGlow), printed text (text);
and illustrations of flat colour with sharp edges (Cascade, SafeLanding, goldfish).
Near-blank wallpapers (a gradient and a logo) are left out: they teach nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np


class Kind(enum.Enum):
    PHOTO = "photo"
    ILLUSTRATION = "illustration"


@dataclass(frozen=True)
class Picture:
    name: str
    origin: str  # a Debian package, or "skimage" / "sklearn"
    path: str  # under /usr/share for a package; the loader's name for skimage and sklearn
    kind: Kind


WALLPAPERS = Path("/usr/share")
PACKAGES = ("mate-backgrounds", "plasma-workspace-wallpapers", "ukui-wallpapers", "gnome-backgrounds")


def _mate(name: str, folder: str = "nature", kind: Kind = Kind.PHOTO, file: str | None = None) -> Picture:
    return Picture(name, "mate-backgrounds", f"backgrounds/mate/{folder}/{file or name + '.jpg'}", kind)


def _plasma(name: str, size: str, kind: Kind, ext: str = "jpg") -> Picture:
    return Picture(name, "plasma-workspace-wallpapers", f"wallpapers/{name}/contents/images/{size}.{ext}", kind)


def _ukui(name: str, ext: str) -> Picture:
    return Picture(name, "ukui-wallpapers", f"backgrounds/{name}.{ext}", Kind.ILLUSTRATION)


def _gnome(name: str) -> Picture:
    return Picture(name, "gnome-backgrounds", f"backgrounds/gnome/{name}.webp", Kind.ILLUSTRATION)


def _skimage(name: str) -> Picture:
    return Picture(name, "skimage", name, Kind.PHOTO)


_P, _I = Kind.PHOTO, Kind.ILLUSTRATION
PICTURES: tuple[Picture, ...] = (
    *(_mate(n) for n in ("Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops",
                         "Storm", "TwoWings", "Wood", "YellowFlower")),
    *(_plasma(n, "2560x1600", _P) for n in ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow",
                                            "FallenLeaf", "Grey", "Kite", "OneStandsOut", "Path", "summer_1am")),
    *(_skimage(n) for n in ("astronaut", "coffee", "chelsea", "rocket", "horse", "brick", "grass", "gravel", "camera",
                            "moon", "page", "text", "coins", "hubble_deep_field", "immunohistochemistry", "retina")),
    Picture("china", "sklearn", "china.jpg", _P),
    Picture("flower", "sklearn", "flower.jpg", _P),
    _mate("Elephants", "abstract", _I, "Elephants_5640x3172.jpg"),
    _mate("Flow-mate", "abstract", _I, "Flow.png"),
    _mate("Gulp", "abstract", _I, "Gulp.png"),
    _mate("Ubuntu-Mate-Warm", "desktop", _I, "Ubuntu-Mate-Warm-no-logo.png"),
    _plasma("Autumn", "2560x1600", _I),
    *(_plasma(n, "5120x2880", _I, "png") for n in ("Altai", "IceCold", "Kay", "MilkyWay", "Patak")),
    *(_plasma(n, "5120x2880", _I) for n in ("Flow", "Honeywave", "SafeLanding", "Shell", "Volna")),
    *(_plasma(n, "3840x2160", _I, "png") for n in ("Canopee", "Cascade", "Cluster", "Kokkini", "Opal")),
    _plasma("Elarun", "2560x1600", _I, "png"),
    _plasma("FlyingKonqui", "2560x1600", _I, "png"),
    _plasma("PastelHills", "3200x2000", _I),
    *(_ukui(n, "jpg") for n in ("2004default", "firstgeneration", "rhythm", "string", "the-mouse")),
    *(_ukui(n, "png") for n in ("calla", "city", "desert", "fluent-color", "focal-ubuntukylin", "goldfish", "rollpaper")),
    *(_gnome(n) for n in ("adwaita-l", "grid-l", "licorice-l", "pixels-l", "truchet-l", "wood-l")),
)
HELD_OUT_PICTURES = frozenset({"chelsea", "LadyBird", "Kite", "OneStandsOut", "EveningGlow", "text",
                               "Cascade", "SafeLanding", "goldfish"})


def by_name(name: str) -> Picture:
    for picture in PICTURES:
        if picture.name == name:
            return picture
    raise KeyError(f"no picture named {name!r} in the corpus list")


def split(picture: Picture) -> str:
    return "test" if picture.name in HELD_OUT_PICTURES else "train"


class MissingPictures(RuntimeError):
    """Wallpaper packages the corpus needs are not installed."""


def missing_packages() -> list[str]:
    """The wallpaper packages whose pictures are not on disk."""
    return sorted({p.origin for p in PICTURES if p.origin in PACKAGES and not (WALLPAPERS / p.path).is_file()})


def require_pictures() -> None:
    missing = missing_packages()
    if missing:
        raise MissingPictures(f"the video SR corpus needs the Debian packages {', '.join(missing)}: "
                              "run `scripts/setup.sh --video-sr-corpus` (or apt-get install them)")


def load(name: str, max_side: int = 2048) -> np.ndarray:
    """(H, W, 3) uint8, antialiased down to at most `max_side` pixels on its longer side
    (the corpus downscales further per clip; this only bounds memory and decode time).
    Cached, so read-only: callers copy before writing."""
    image = _load(name, max_side)
    image.setflags(write=False)
    return image


@lru_cache(maxsize=8)
def _load(name: str, max_side: int) -> np.ndarray:
    from PIL import Image

    picture = by_name(name)
    if picture.origin == "skimage":
        from skimage import data

        image = getattr(data, picture.path)()
        if image.dtype == bool:
            image = image.astype(np.uint8) * 255
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        return np.ascontiguousarray(image[..., :3]).astype(np.uint8)
    if picture.origin == "sklearn":
        from sklearn.datasets import load_sample_image

        return np.ascontiguousarray(load_sample_image(picture.path)[..., :3])
    with Image.open(WALLPAPERS / picture.path) as im:
        im = im.convert("RGB")
        if max(im.size) > max_side:
            ratio = max_side / max(im.size)
            im = im.resize((round(im.size[0] * ratio), round(im.size[1] * ratio)), Image.LANCZOS)
        return np.asarray(im).copy()
