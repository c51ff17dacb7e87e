"""engine.data.images: every image generated here with PIL, nothing shipped."""

from __future__ import annotations

import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps, JpegImagePlugin

from engine.data.images import (
    MAX_PIXELS,
    ImageReadError,
    image_size,
    load_image,
    looks_truncated,
    raw_size_and_orientation,
    verify_image,
)

ORIENTATION = 0x0112


def _save(im: Image.Image, path: Path, **params) -> Path:
    im.save(path, **params)
    return path


def _noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _stored_mode(path: Path) -> str:
    with Image.open(path) as im:
        return im.mode


def _assert_rgb_array(arr: np.ndarray, shape: tuple[int, int, int]) -> None:
    assert arr.shape == shape
    assert arr.dtype == np.uint8
    assert arr.flags.c_contiguous and arr.flags.writeable


def _png_chunks(data: bytes) -> list[bytes]:
    """Split a PNG after its signature into whole chunks (length, type, data, CRC)."""
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append(data[pos : pos + 12 + length])
        pos += 12 + length
    return chunks


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


# --------------------------------------------------------------------------- pixel modes


def test_grayscale(tmp_path):
    path = _save(Image.new("L", (5, 4), 77), tmp_path / "g.png")
    arr = load_image(path)
    _assert_rgb_array(arr, (4, 5, 3))
    assert (arr == 77).all()


def test_gray_with_alpha_is_composited_over_black(tmp_path):
    path = _save(Image.new("LA", (3, 2), (200, 128)), tmp_path / "la.png")
    arr = load_image(path)
    _assert_rgb_array(arr, (2, 3, 3))
    assert (arr == 100).all()  # round(200 * 128 / 255) = 100


def test_rgba_is_composited_over_black(tmp_path):
    im = Image.new("RGBA", (3, 1), (255, 100, 0, 128))
    im.putpixel((1, 0), (255, 255, 255, 0))  # fully transparent white
    im.putpixel((2, 0), (10, 20, 30, 255))  # opaque
    arr = load_image(_save(im, tmp_path / "rgba.png"))
    assert arr[0].tolist() == [[128, 50, 0], [0, 0, 0], [10, 20, 30]]


@pytest.mark.parametrize("transparent", [True, False])
def test_palette(tmp_path, transparent):
    im = Image.new("P", (4, 1), 0)
    im.putpalette([255, 255, 255, 10, 200, 30])  # index 0 white, 1 green
    im.putpixel((2, 0), 1)
    im.putpixel((3, 0), 1)
    params = {"transparency": 0} if transparent else {}
    arr = load_image(_save(im, tmp_path / "p.png", **params))
    left = [0, 0, 0] if transparent else [255, 255, 255]
    assert arr[0].tolist() == [left, left, [10, 200, 30], [10, 200, 30]]


def test_16_bit_grayscale_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    path = _save(Image.fromarray(values), tmp_path / "g16.png")
    assert _stored_mode(path).startswith("I;16")
    arr = load_image(path)
    assert arr[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (arr[..., 0] == arr[..., 2]).all()


def test_32_bit_integer_tiff_is_scaled_as_16_bit_and_clamped(tmp_path):
    values = np.array([[-5, 0, 32768, 65535, 70000]], dtype=np.int32)
    path = _save(Image.fromarray(values), tmp_path / "i32.tif")
    assert _stored_mode(path) == "I"
    assert load_image(path)[0, :, 1].tolist() == [0, 0, 128, 255, 255]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.0, 0.5, 1.0, -0.2], [0, 128, 255, 0]),  # max <= 1: scaled by 255
        ([0.0, 100.4, 300.0, -5.0], [0, 100, 255, 0]),  # max > 1: clipped
        ([float("nan"), 0.25, 1.0, 0.0], [0, 64, 255, 0]),  # NaN -> 0
    ],
)
def test_float_tiff(tmp_path, values, expected):
    im = Image.fromarray(np.array([values], dtype=np.float32))
    assert im.mode == "F"
    arr = load_image(_save(im, tmp_path / "f.tif"))
    assert arr[0, :, 0].tolist() == expected


def test_cmyk_jpeg_colour_is_about_right(tmp_path):
    im = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    path = _save(im, tmp_path / "cmyk.jpg", quality=95)
    assert _stored_mode(path) == "CMYK"
    arr = load_image(path).astype(int)
    assert np.abs(arr - [255, 0, 0]).max() <= 8


def test_bilevel(tmp_path):
    im = Image.new("1", (4, 2), 0)
    im.putpixel((1, 1), 1)
    arr = load_image(_save(im, tmp_path / "b.png"))
    assert arr[1, 1].tolist() == [255, 255, 255]
    assert arr.sum() == 3 * 255


def test_ycbcr(tmp_path):
    im = Image.new("RGB", (4, 4), (200, 30, 60)).convert("YCbCr")
    path = _save(im, tmp_path / "ycc.tif")
    assert _stored_mode(path) == "YCbCr"
    assert np.abs(load_image(path).astype(int) - [200, 30, 60]).max() <= 3


# --------------------------------------------------------------------------- EXIF orientation


def _oriented_jpeg(path: Path, orientation: int) -> Path:
    """64x32 black JPEG with a red 16x16 block in its stored top-left corner."""
    im = Image.new("RGB", (64, 32), (0, 0, 0))
    im.paste((255, 0, 0), (0, 0, 16, 16))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return _save(im, path, quality=95, exif=exif)


def _is_red(pixel) -> bool:
    r, g, b = (int(v) for v in pixel)
    return r > 200 and g < 60 and b < 60


@pytest.mark.parametrize(
    ("orientation", "shape", "red_corner"),
    [
        (3, (32, 64, 3), (-4, -4)),  # rotated 180: block at bottom-right
        (6, (64, 32, 3), (3, -4)),  # rotated 90 clockwise: top-right
        (8, (64, 32, 3), (-4, 3)),  # rotated 90 counter-clockwise: bottom-left
    ],
)
def test_exif_orientation_is_applied(tmp_path, orientation, shape, red_corner):
    path = _oriented_jpeg(tmp_path / f"o{orientation}.jpg", orientation)
    arr = load_image(path)
    _assert_rgb_array(arr, shape)
    assert _is_red(arr[red_corner])
    assert not _is_red(arr[3, 3]) or red_corner == (3, 3)
    # Same pixels as PIL's own exif_transpose of the same file.
    with Image.open(path) as stored:
        expected = np.asarray(ImageOps.exif_transpose(stored).convert("RGB"))
    assert np.array_equal(arr, expected)

    assert raw_size_and_orientation(path) == (64, 32, orientation)
    assert image_size(path) == (shape[1], shape[0])


def test_no_exif_means_orientation_1(tmp_path):
    path = _save(Image.new("RGB", (6, 4)), tmp_path / "plain.jpg")
    assert raw_size_and_orientation(path) == (6, 4, 1)
    assert image_size(path) == (6, 4)


def test_max_side_with_orientation_keeps_the_upright_aspect(tmp_path):
    path = _oriented_jpeg(tmp_path / "o6.jpg", 6)
    arr = load_image(path, max_side=16)
    assert arr.shape == (16, 8, 3)
    assert _is_red(arr[1, -2])


def test_image_size_reads_only_the_header(tmp_path, monkeypatch):
    png = _save(Image.new("RGB", (7, 3)), tmp_path / "a.png")
    jpg = _oriented_jpeg(tmp_path / "a.jpg", 8)

    def no_decoding(self):
        raise AssertionError("image_size must not decode pixels")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    assert image_size(png) == (7, 3)
    assert image_size(jpg) == (32, 64)


def test_png_orientation_after_the_pixel_data_is_found(tmp_path):
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    path = _save(Image.new("RGB", (8, 2)), tmp_path / "late.png", exif=exif)
    chunks = _png_chunks(path.read_bytes())
    exif_chunk = next(c for c in chunks if c[4:8] == b"eXIf")
    rest = [c for c in chunks if c is not exif_chunk]
    # Move eXIf to just before IEND, where the PNG spec still allows it.
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"".join(rest[:-1]) + exif_chunk + rest[-1])

    assert raw_size_and_orientation(path) == (8, 2, 6)
    assert image_size(path) == (2, 8)
    assert load_image(path).shape == (8, 2, 3)


# --------------------------------------------------------------------------- size


@pytest.fixture(scope="module")
def large_images(tmp_path_factory):
    """12000x16000 grey PNG and JPEG: over twice PIL's default bomb limit."""
    folder = tmp_path_factory.mktemp("large")
    im = Image.linear_gradient("L").resize((12000, 16000), Image.Resampling.NEAREST)
    return {
        "png": _save(im, folder / "large.png", compress_level=1),
        "jpg": _save(im, folder / "large.jpg", quality=80),
    }


def test_large_image_loads(large_images):
    assert 12000 * 16000 > 2 * 89_478_485  # PIL's default would refuse it
    path = large_images["png"]
    assert image_size(path) == (12000, 16000)
    arr = load_image(path)
    _assert_rgb_array(arr, (16000, 12000, 3))
    assert arr[0, 0, 0] == 0 and arr[-1, 0, 0] == 255  # gradient top to bottom
    assert load_image(path, max_side=1000).shape == (1000, 750, 3)


def test_max_side_on_jpeg_uses_draft(large_images, monkeypatch):
    calls = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        calls.append((mode, size))
        return original(self, mode, size)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    arr = load_image(large_images["jpg"], max_side=1000)
    _assert_rgb_array(arr, (1000, 750, 3))
    assert calls == [("RGB", (750, 1000))]


def test_max_side_never_enlarges_and_must_be_positive(tmp_path):
    path = _save(Image.new("RGB", (30, 20)), tmp_path / "small.png")
    assert load_image(path, max_side=100).shape == (20, 30, 3)
    assert load_image(path, max_side=15).shape == (10, 15, 3)
    with pytest.raises(ValueError):
        load_image(path, max_side=0)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_more_than_max_pixels_is_refused(tmp_path):
    side = 40_000  # 1.6e9 pixels; only the header exists, nothing is decoded
    assert side * side > MAX_PIXELS
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path = tmp_path / "huge.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b""))
    with pytest.raises(ImageReadError, match="too large"):
        load_image(path)
    with pytest.raises(ImageReadError, match="too large"):
        image_size(path)


# --------------------------------------------------------------------------- broken files


@pytest.mark.parametrize("suffix", ["jpg", "png"])
def test_truncated_file(tmp_path, suffix):
    path = _save(_noise(256, 256), tmp_path / f"full.{suffix}")
    assert not looks_truncated(path)
    assert verify_image(path) is None

    data = path.read_bytes()
    cut = tmp_path / f"cut.{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    assert looks_truncated(cut)
    assert verify_image(cut).startswith("truncated")
    with pytest.raises(ImageReadError, match="truncated") as info:
        load_image(cut)
    assert str(cut) in str(info.value)


def test_looks_truncated_allows_a_little_padding(tmp_path):
    path = _save(_noise(32, 32), tmp_path / "a.jpg")
    data = path.read_bytes()
    path.write_bytes(data + b"\x00\x00\r\n")
    assert not looks_truncated(path)
    path.write_bytes(data + b"\x00" * 100)  # e.g. preallocated, never filled
    assert looks_truncated(path)


def test_looks_truncated_ignores_other_formats(tmp_path):
    bmp = _save(_noise(8, 8), tmp_path / "a.bmp")
    bmp.write_bytes(bmp.read_bytes()[:40])
    empty = tmp_path / "empty.jpg"
    empty.touch()
    assert not looks_truncated(bmp)
    assert not looks_truncated(empty)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.touch()
    with pytest.raises(ImageReadError, match="empty") as info:
        load_image(path)
    assert str(path) in str(info.value)
    assert verify_image(path) == "file is empty"


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not a picture\n")
    with pytest.raises(ImageReadError, match="not an image file"):
        load_image(path)
    with pytest.raises(ImageReadError):
        image_size(path)
    assert verify_image(path) == "not an image file"


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "gone.png"
    for read in (load_image, image_size, raw_size_and_orientation, looks_truncated):
        with pytest.raises(ImageReadError) as info:
            read(path)
        assert str(path) in str(info.value)
    assert verify_image(path) == "file not found"


def test_error_survives_pickling():
    err = pickle.loads(pickle.dumps(ImageReadError("/data/a.jpg", "file is empty")))
    assert (err.path, err.reason, str(err)) == ("/data/a.jpg", "file is empty", "/data/a.jpg: file is empty")


def test_fast_jpeg_path_gives_the_same_pixels_as_pil(tmp_path, monkeypatch):
    import engine.data.images as images_module

    rng = np.random.default_rng(0)
    for mode, name in (("RGB", "colour.jpg"), ("L", "gray.jpg")):
        arr = rng.integers(0, 255, (48, 64, 3) if mode == "RGB" else (48, 64), dtype=np.uint8)
        path = tmp_path / name
        Image.fromarray(arr, mode).save(path, quality=90)
        fast = images_module.load_image(path)
        monkeypatch.setattr(images_module, "_decode_jpeg_fast", lambda p: None)
        slow = images_module.load_image(path)
        monkeypatch.undo()
        assert fast.shape == slow.shape == (48, 64, 3)
        assert np.abs(fast.astype(int) - slow.astype(int)).max() <= 1
