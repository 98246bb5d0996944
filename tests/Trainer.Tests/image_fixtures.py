#!/usr/bin/python3
"""Writes image files for ImageFolderTests and PredictTests with PIL (Debian's python3-pil, under
/usr/bin/python3): odd formats, broken files, and PIL's own decode of real JPEGs to compare ours
against.

Usage: /usr/bin/python3 image_fixtures.py OUT_DIR JPEG [JPEG ...]
Writes gray.jpg (grayscale), cmyk.jpg (CMYK, pure red), rgba.png (RGBA, alpha varies, RGB fixed),
exif6.jpg (60x40 stored, EXIF orientation 6 = shown rotated 90 degrees clockwise, red in the
stored top-left corner), truncated.jpg (the first half of a JPEG), notimage.jpg (text),
photo.bmp, photo.png and photo.gif (40x30, a colour gradient; the GIF palette-quantised), and for
each JPEG argument i: decoded_i.rgb (PIL's RGB bytes) and decoded_i.size ("W H")."""
import io, sys
from PIL import Image

out, jpegs = sys.argv[1], sys.argv[2:]
Image.new("L", (48, 32), 128).save(f"{out}/gray.jpg", quality=95)
Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(f"{out}/cmyk.jpg", quality=95)
rgba = Image.new("RGBA", (32, 32), (10, 200, 30, 255))
for x in range(32):
    for y in range(32):
        rgba.putpixel((x, y), (10, 200, 30, (x * 8) % 256))
rgba.save(f"{out}/rgba.png")
marked = Image.new("RGB", (60, 40), (0, 0, 255))
for x in range(10):
    for y in range(10):
        marked.putpixel((x, y), (255, 0, 0))
exif = Image.Exif()
exif[0x0112] = 6
marked.save(f"{out}/exif6.jpg", quality=95, exif=exif)
buffer = io.BytesIO()
Image.new("RGB", (64, 64), (90, 60, 30)).save(buffer, "JPEG", quality=95)
data = buffer.getvalue()
open(f"{out}/truncated.jpg", "wb").write(data[: len(data) // 2])
open(f"{out}/notimage.jpg", "w").write("this is not an image\n")
photo = Image.new("RGB", (40, 30))
for x in range(40):
    for y in range(30):
        photo.putpixel((x, y), (x * 6, y * 8, 128))
photo.save(f"{out}/photo.bmp")
photo.save(f"{out}/photo.png")
photo.save(f"{out}/photo.gif")
for i, path in enumerate(jpegs):
    image = Image.open(path).convert("RGB")
    open(f"{out}/decoded_{i}.rgb", "wb").write(image.tobytes())
    open(f"{out}/decoded_{i}.size", "w").write(f"{image.width} {image.height}")
