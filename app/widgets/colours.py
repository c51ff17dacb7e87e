"""The one category colour map every view uses, and label text that stays readable on it.

A category's colour depends only on its contiguous label (0..K-1, the engine's remap of
the COCO ids), so Browse, Image and Augment draw a category in the same colour.
"""

from __future__ import annotations

import colorsys

from PySide6.QtGui import QColor

UNKNOWN_RGB = (160, 160, 160)
_GOLDEN = 0.618033988749895


def category_rgb(label: int) -> tuple[int, int, int]:
    """A distinct colour per label, the same every run; negative labels (unknown) are grey.

    Hues step by the golden ratio, so neighbouring labels differ a lot and any number
    of categories stays spread out; the brightness alternates so close hues still differ.
    """
    if label < 0:
        return UNKNOWN_RGB
    hue = (0.08 + label * _GOLDEN) % 1.0
    value = 0.95 if label % 2 == 0 else 0.80
    r, g, b = colorsys.hsv_to_rgb(hue, 0.80, value)
    return round(r * 255), round(g * 255), round(b * 255)


def category_colour(label: int) -> QColor:
    return QColor(*category_rgb(label))


def category_hex(label: int) -> str:
    red, green, blue = category_rgb(label)
    return f"#{red:02x}{green:02x}{blue:02x}"


def luminance(rgb: tuple[int, int, int]) -> float:
    """Relative luminance (WCAG, sRGB) of an 8-bit colour, 0 (black) .. 1 (white)."""

    def linear(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def text_rgb(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever contrasts more with the background."""
    lum = luminance(background)
    # Contrast ratios (L1 + 0.05) / (L2 + 0.05) against white and against black.
    on_white = 1.05 / (lum + 0.05)
    on_black = (lum + 0.05) / 0.05
    return (0, 0, 0) if on_black >= on_white else (255, 255, 255)


def text_colour(background: QColor) -> QColor:
    return QColor(*text_rgb((background.red(), background.green(), background.blue())))
