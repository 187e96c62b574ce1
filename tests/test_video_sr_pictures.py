"""The video SR corpus's pictures: a held-out split by whole picture, kinds, and a clear
error where the wallpaper packages are missing."""

import numpy as np
import pytest

from pipelines.video_sr import pictures
from pipelines.video_sr.data import HELD_OUT, clip_spec, main, source_kind, sources


def test_held_out_pictures_are_whole_pictures_of_every_kind_and_never_in_training():
    names = [p.name for p in pictures.PICTURES]
    assert len(names) == len(set(names))  # a name is one picture: the split cannot leak through a duplicate
    assert pictures.HELD_OUT_PICTURES <= set(names)
    held = [p for p in pictures.PICTURES if pictures.split(p) == "test"]
    assert {p.kind for p in held} == {pictures.Kind.PHOTO, pictures.Kind.ILLUSTRATION}
    trained = {clip_spec(i, 0, 2, 64).source for i in range(400)} - set(HELD_OUT)
    assert trained and not trained & pictures.HELD_OUT_PICTURES
    assert {source_kind(s) for s in sources()} == {"photo", "illustration", "procedural", "synthetic"}


def test_pictures_inside_the_wheels_load_as_rgb():
    for picture in pictures.PICTURES:
        if picture.origin in ("skimage", "sklearn"):
            image = pictures.load(picture.name)
            assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.std() > 5


def test_missing_wallpaper_packages_are_named_with_the_command_that_installs_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pictures, "WALLPAPERS", tmp_path)
    assert set(pictures.missing_packages()) == set(pictures.PACKAGES)
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(tmp_path / "corpus"), "--clips", "2"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "mate-backgrounds" in err and "scripts/setup.sh --video-sr-corpus" in err
    assert not (tmp_path / "corpus").exists()
