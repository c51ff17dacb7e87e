"""Load images as they really come: any pixel mode, rotated by EXIF, huge or broken.

Every image leaves :func:`load_image` as an RGB ``uint8`` array of shape
``(H, W, 3)``, C-contiguous and writable, whatever the file stored.

Coordinate frame
    COCO annotations are pixel coordinates in the image *as displayed*, so the
    EXIF orientation tag is applied (the same 8 cases as
    ``PIL.ImageOps.exif_transpose``). :func:`image_size` reports that oriented
    size; :func:`raw_size_and_orientation` the stored one, for checking a COCO
    file whose ``width``/``height`` were written by a tool that ignored EXIF.
    An EXIF block too damaged to parse counts as orientation 1, in every function.

Transparency
    Pixels with alpha are composited over black (colour * alpha / 255). Colour
    under a transparent pixel is undefined (often left-over junk), so a model
    must not see it; black is a fixed, deterministic choice that does not depend
    on a random background.

Pixel depth
    16-bit grey (``I;16*``, ``I``) maps to 8 bit by ``round(v * 255 / 65535)``,
    not by PIL's own conversion, which clips everything above 255 to white.
    ``I`` values outside 0..65535 are clamped first. Float (``F``) images in 0..1
    are scaled by 255, others are clipped to 0..255; NaN becomes 0.

Large images
    PIL refuses images above ~179 MPixel as possible decompression bombs, which
    rejects real aerial or microscopy images. On import this module raises
    ``PIL.Image.MAX_IMAGE_PIXELS`` to :data:`MAX_PIXELS` (it never lowers it nor
    re-enables a disabled check), and refuses anything above :data:`MAX_PIXELS`
    itself with :class:`ImageReadError`.

Only the first frame of a multi-frame file (GIF, TIFF, MPO) is read.
Truncated files are errors: ``ImageFile.LOAD_TRUNCATED_IMAGES`` is left alone.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
from PIL import ExifTags, Image, PngImagePlugin, UnidentifiedImageError

try:  # OpenCV comes with albumentations; without it every image takes the PIL path.
    import cv2

    _CV2_RGB = getattr(cv2, "IMREAD_COLOR_RGB", cv2.IMREAD_COLOR)
except ImportError:  # pragma: no cover - depends on the environment
    cv2 = None  # type: ignore[assignment]  # the callers test for None before any use

__all__ = [
    "MAX_PIXELS",
    "ImageReadError",
    "image_size",
    "load_image",
    "looks_truncated",
    "raw_size_and_orientation",
    "verify_image",
]

StrPath = str | os.PathLike[str]

#: Largest image (width * height) this module will open.
MAX_PIXELS = 1_500_000_000

# Raise PIL's bomb guard so legitimate large images open; never make it stricter
# than someone else already made it looser (None disables it).
if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS

# EXIF orientation -> the transpose that shows the image upright.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = {5, 6, 7, 8}

_JPEG_MAGIC = b"\xff\xd8\xff"
_JPEG_END = b"\xff\xd9"  # EOI marker
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # empty IEND chunk with its fixed CRC
# Some writers pad files after the end marker; more padding than this looks like
# a preallocated file that was never filled.
_TAIL_PADDING = b"\x00 \t\r\n"
_MAX_TAIL_PADDING = 16
# PNG chunks that can carry an orientation (eXIf, or EXIF/XMP inside text chunks).
_PNG_METADATA_CHUNKS = {b"eXIf", b"tEXt", b"zTXt", b"iTXt"}

# Row blocks for numpy depth conversion, so a huge 16-bit image needs a few
# hundred MB of temporaries rather than 8 bytes per pixel at once.
_ROWS_PER_BLOCK = 512


class ImageReadError(Exception):
    """An image file cannot be read; the message names the file and the reason."""

    def __init__(self, path: StrPath, reason: str):
        self.path = os.fsdecode(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self) -> tuple[type[ImageReadError], tuple[str, str]]:
        # Default pickling would call __init__ with the message only; keep the
        # error intact when it crosses a process boundary (DataLoader workers).
        return (type(self), (self.path, self.reason))


# --------------------------------------------------------------------------- public API


def load_image(path: StrPath, *, max_side: int | None = None) -> np.ndarray:
    """Decode ``path`` to an upright RGB ``uint8`` array ``(H, W, 3)``.

    ``max_side`` shrinks the result (never enlarges it) so that its longer side
    is at most ``max_side``, keeping the aspect ratio; JPEGs are then decoded at
    1/2, 1/4 or 1/8 scale first, which is much faster than a full decode.
    Raises :class:`ImageReadError` for anything that is not a readable image.
    """
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be a positive int, got {max_side!r}")
    with _errors_named(path), _open(path) as im:
        stored_size = im.size
        if max_side is None and im.format == "JPEG" and im.mode in ("RGB", "L") and _orientation(im) == 1:
            fast = _decode_jpeg_fast(path)
            if fast is not None:
                return fast
        if max_side is not None:
            draft_size = _fit(stored_size, max_side)
            if draft_size != stored_size:
                # Only JPEG implements draft (others ignore it); the decoder picks
                # the largest DCT scale that stays at or above draft_size.
                im.draft("RGB", draft_size)
        im.load()
        orientation = _orientation(im)
        upright = im.transpose(_TRANSPOSE[orientation]) if orientation in _TRANSPOSE else im
        eight_bit = _to_8bit(path, upright)
        if max_side is not None:
            # Fit the *original* upright size: a drafted size is rounded up and
            # would nudge the aspect ratio.
            w, h = stored_size
            target = _fit((h, w) if orientation in _SWAPS_AXES else (w, h), max_side)
            if eight_bit.size != target:
                eight_bit = eight_bit.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
        return _to_rgb_array(eight_bit)


def _decode_jpeg_fast(path: StrPath) -> np.ndarray | None:
    """Upright plain JPEGs through OpenCV's decoder: about 2.5x faster than PIL's here.

    Only for files the caller found upright (orientation 1) and RGB or gray, so
    the result means the same as PIL's. A file without its end marker returns
    None and goes to the PIL path, which reports the truncation.
    """
    if cv2 is None:
        return None
    data = np.fromfile(path, dtype=np.uint8)
    tail = data[-(_MAX_TAIL_PADDING + 2) :].tobytes().rstrip(_TAIL_PADDING)
    if not tail.endswith(_JPEG_END):
        return None
    flags = _CV2_RGB | cv2.IMREAD_IGNORE_ORIENTATION
    image = cv2.imdecode(data, flags)
    if image is None or image.ndim != 3:
        return None
    if _CV2_RGB == cv2.IMREAD_COLOR:  # OpenCV before 4.10 has no RGB flag
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image)


def image_size(path: StrPath) -> tuple[int, int]:
    """``(width, height)`` as displayed (EXIF orientation applied), from the header only."""
    width, height, orientation = raw_size_and_orientation(path)
    return (height, width) if orientation in _SWAPS_AXES else (width, height)


def raw_size_and_orientation(path: StrPath) -> tuple[int, int, int]:
    """Stored ``(width, height, orientation)``; orientation is 1 when absent or invalid."""
    with _errors_named(path), _open(path) as im:
        png_without_exif = isinstance(im, PngImagePlugin.PngImageFile) and "exif" not in im.info
        if png_without_exif and _png_has_late_metadata(path):
            # Metadata stored after the pixel data is only reached by decoding;
            # rare, and correctness beats speed here.
            im.load()
        return im.size[0], im.size[1], _orientation(im)


def looks_truncated(path: StrPath) -> bool:
    """Cheap tail check: does a JPEG/PNG lack its end marker? Other formats: False.

    Recognises the format by content, not by extension. A True is a reason to
    run :func:`verify_image`, not proof: a few writers append data after the
    end marker.
    """
    with _errors_named(path), open(path, "rb") as f:
        head = f.read(len(_PNG_MAGIC))
        if head.startswith(_JPEG_MAGIC):
            end = _JPEG_END
        elif head.startswith(_PNG_MAGIC):
            end = _PNG_END
        else:
            return False
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - len(end) - _MAX_TAIL_PADDING))
        tail = f.read()
    return not tail.rstrip(_TAIL_PADDING).endswith(end)


def verify_image(path: StrPath) -> str | None:
    """Decode ``path`` fully; None if it is fine, else a short reason for people."""
    try:
        with _errors_named(path):
            with _open(path) as im:
                im.verify()  # PNG: checks every chunk CRC, which decoding skips
            with _open(path) as im:  # verify() leaves the image unusable; reopen
                im.load()
    except ImageReadError as err:
        return err.reason
    return None


# --------------------------------------------------------------------------- opening


@contextmanager
def _errors_named(path: StrPath) -> Iterator[None]:
    """Turn any failure inside PIL/IO into an ImageReadError naming ``path``."""
    try:
        yield
    except (ImageReadError, MemoryError):
        raise  # MemoryError is the machine's problem, not the file's
    except Exception as exc:
        raise ImageReadError(path, _describe(exc, path)) from exc


def _open(path: StrPath) -> Image.Image:
    """Open lazily (header only), refusing empty and oversized files."""
    if os.stat(path).st_size == 0:
        raise ImageReadError(path, "file is empty")
    im = Image.open(path)
    width, height = im.size
    if width * height > MAX_PIXELS:
        im.close()
        raise ImageReadError(path, f"too large: {width}x{height} = {width * height} pixels, limit is {MAX_PIXELS}")
    return im


def _describe(exc: Exception, path: StrPath) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, Image.DecompressionBombError):
        return f"too large: {exc}"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image file"
    text = str(exc) or type(exc).__name__
    if "truncat" in text.lower() or _quietly_looks_truncated(path):
        return f"truncated: {text}"
    return f"corrupt: {text}"


def _quietly_looks_truncated(path: StrPath) -> bool:
    # Only used to label an error that already happened; must not raise a new one.
    try:
        return looks_truncated(path)
    except ImageReadError:
        return False


def _orientation(im: Image.Image) -> int:
    """EXIF orientation 1..8, read the way exif_transpose reads it; else 1."""
    try:
        # PngImageFile.getexif decodes the whole image when the header had no
        # eXIf chunk; callers load late metadata themselves, so skip that.
        exif = Image.Image.getexif(im) if isinstance(im, PngImagePlugin.PngImageFile) else im.getexif()
        value = exif.get(ExifTags.Base.Orientation, 1)
    except Exception:
        return 1  # a damaged EXIF block should not make good pixels unusable
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _png_has_late_metadata(path: StrPath) -> bool:
    """Is there a metadata chunk after the first IDAT? Walks chunk headers only."""
    with open(path, "rb") as f:
        f.seek(len(_PNG_MAGIC))
        seen_pixels = False
        while len(header := f.read(8)) == 8:
            length, kind = struct.unpack(">I4s", header)
            if kind == b"IEND":
                break
            if kind == b"IDAT":
                seen_pixels = True
            elif seen_pixels and kind in _PNG_METADATA_CHUNKS:
                return True
            f.seek(length + 4, os.SEEK_CUR)  # chunk data + CRC
    return False


def _fit(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """Largest size with the same aspect ratio whose longer side is <= max_side."""
    width, height = size
    longest = max(width, height)
    if longest <= max_side:
        return size
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


# --------------------------------------------------------------------------- pixel modes


def _to_8bit(path: StrPath, im: Image.Image) -> Image.Image:
    """Any PIL mode -> L, LA, RGB or RGBA, still as a PIL image (cheap to resize)."""
    mode = im.mode
    if mode in ("L", "RGB") and not im.has_transparency_data:
        return im
    if mode in ("LA", "RGBA"):
        return im
    if mode == "I" or mode.startswith("I;16"):
        return Image.fromarray(_map_rows(np.asarray(im), _sixteen_to_8bit))
    if mode == "F":
        return Image.fromarray(_float_to_8bit(np.asarray(im)))
    # 1, P, PA, CMYK (PIL already undid Adobe's inversion), YCbCr, LAB, HSV,
    # and L/RGB with a transparent colour.
    target = "RGBA" if im.has_transparency_data else "RGB"
    try:
        return im.convert(target)
    except ValueError as exc:
        raise ImageReadError(path, f"unsupported pixel mode {mode}: {exc}") from exc


def _sixteen_to_8bit(block: np.ndarray) -> np.ndarray:
    # int64: an 'I' image may hold 32-bit values, and v * 255 must not overflow.
    # (v * 255 + 32767) // 65535 is round(v * 255 / 65535); there are no ties.
    return (np.clip(block.astype(np.int64), 0, 65535) * 255 + 32767) // 65535


def _float_to_8bit(values: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    peak = float(np.max(values, where=finite, initial=0.0))
    # 0..1 data is normalised intensity; anything larger is taken as 0..255.
    scale = 255.0 if peak <= 1.0 else 1.0

    def convert(block: np.ndarray) -> np.ndarray:
        block = np.nan_to_num(block.astype(np.float32) * scale, nan=0.0, posinf=255.0, neginf=0.0)
        return np.rint(np.clip(block, 0.0, 255.0))

    return _map_rows(values, convert)


def _map_rows(values: np.ndarray, convert: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply ``convert`` block by block into a uint8 array of the same shape."""
    out = np.empty(values.shape, np.uint8)
    for start in range(0, values.shape[0], _ROWS_PER_BLOCK):
        stop = start + _ROWS_PER_BLOCK
        out[start:stop] = convert(values[start:stop])
    return out


def _to_rgb_array(im: Image.Image) -> np.ndarray:
    """L, LA, RGB or RGBA image -> writable C-contiguous RGB uint8 array."""
    if im.mode in ("LA", "RGBA"):
        pixels = np.asarray(im)
        colour = pixels[..., :-1].astype(np.uint16)
        alpha = pixels[..., -1:].astype(np.uint16)
        # Over black: round(c * a / 255); c * a + 127 fits in uint16.
        composited = ((colour * alpha + 127) // 255).astype(np.uint8)
        if im.mode == "LA":
            composited = np.repeat(composited, 3, axis=2)
        return np.ascontiguousarray(composited)
    if im.mode == "L":
        return np.repeat(np.asarray(im)[..., None], 3, axis=2)
    # np.asarray shares PIL's immutable bytes; callers (torch, cv2) need to write.
    return np.asarray(im).copy()
