#!/usr/bin/python3
"""Writes tests/data/golden/cmyk_orange.jpg: a 16x8 CMYK JPEG of one colour, C,M,Y,K = 0,200,255,40
(Pillow stores it Adobe-style, inverted). cv::imwrite cannot write CMYK, hence this fixture.
Pillow reads it back as RGB (215, 46, 0), which test_image_loader.cpp expects (to a tolerance:
OpenCV's CMYK->RGB formula differs slightly from Pillow's).

Run: /usr/bin/python3 tests/golden/make_cmyk_jpeg.py
"""
import os

from PIL import Image

out = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "golden",
                                    "cmyk_orange.jpg"))
Image.new("CMYK", (16, 8), (0, 200, 255, 40)).save(out, quality=95)
print(out, Image.open(out).convert("RGB").getpixel((3, 3)))
