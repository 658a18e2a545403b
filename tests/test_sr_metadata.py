"""EXIF and ICC metadata survive super-resolution (issue 12): :mod:`restore.sr.metadata`.

The first part tests the module on its own (fast, no model). The class ``TestWiredIntoImages`` at the
end tests it through ``restore.sr.images.read_image`` / ``write_image`` and the command line; run it
alone with ``pytest tests/test_sr_metadata.py -k Wired``.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms

from restore.sr.metadata import JPEG_ICC_CHUNK, ImageMetadata, embed_metadata, read_metadata

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
#: The sRGB profile relabelled as a grey one (only the header's colour space is looked at).
GREY_ICC = ICC[:16] + b"GRAY" + ICC[20:]
MAKE, MODEL, DATE, TAKEN, LATITUDE_REF = 0x010F, 0x0110, 0x0132, 0x9003, 1   # LATITUDE_REF: in the GPS IFD
ORIENTATION, PIXEL_X = 0x0112, 0xA002
CAMERA = {MAKE: "Canon", MODEL: "EOS R5", DATE: "2024:05:06 07:08:09"}


def camera_exif(orientation: int = 6) -> Image.Exif:
    """EXIF as a phone or camera writes it: IFD0 tags, an Exif sub-IFD, a GPS IFD, a rotation."""
    exif = Image.Exif()
    exif.update(CAMERA)
    exif[ORIENTATION] = orientation
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[TAKEN] = CAMERA[DATE]
    sub[PIXEL_X] = 20                     # the source's width: stale once the image is upscaled
    exif.get_ifd(ExifTags.IFD.GPSInfo)[LATITUDE_REF] = "N"
    return exif


def parse_exif(raw: bytes) -> Image.Exif:
    exif = Image.Exif()
    exif.load(raw)
    return exif


def assert_camera_exif(exif: Image.Exif) -> None:
    """The camera tags are there and the image is declared upright."""
    assert exif.get(ORIENTATION) == 1
    assert {tag: exif.get(tag) for tag in CAMERA} == CAMERA
    assert exif.get_ifd(ExifTags.IFD.Exif).get(TAKEN) == CAMERA[DATE]
    assert exif.get_ifd(ExifTags.IFD.GPSInfo).get(LATITUDE_REF) == "N"


def random_image(shape, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    top = 65535 if dtype == np.uint16 else 255
    return (np.random.default_rng(seed).random(shape) * top).astype(dtype)


def encode(ext: str, arr: np.ndarray, params=()) -> bytes:
    ok, buf = cv2.imencode(ext, arr, list(params))
    assert ok
    return buf.tobytes()


def decode(data: bytes) -> np.ndarray:
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert arr is not None
    return arr


def pil_open(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()                             # reads every chunk: broken CRCs or sizes fail here
    return im


def png_chunks(data: bytes) -> list[bytes]:
    """Chunk types of a PNG, checking every CRC on the way."""
    kinds, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] == zlib.crc32(kind + body)
        kinds.append(kind)
        pos += 12 + length
    return kinds


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """``(marker, payload)`` of a JPEG's segments before the scan."""
    segments, pos = [], 2
    while data[pos + 1] != 0xDA:
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        segments.append((data[pos + 1], data[pos + 4:pos + 2 + length]))
        pos += 2 + length
    return segments


def webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:4] == b"RIFF" and struct.unpack("<I", data[4:8])[0] == len(data) - 8
    chunks, pos = [], 12
    while pos < len(data):
        kind, size = struct.unpack("<4sI", data[pos:pos + 8])
        chunks.append((kind, data[pos + 8:pos + 8 + size]))
        pos += 8 + size + (size & 1)
    assert pos == len(data)
    return chunks


@pytest.fixture(scope="module")
def meta() -> ImageMetadata:
    return ImageMetadata(exif=camera_exif(orientation=1).tobytes()[6:], icc=ICC)


# ------------------------------------------------------------------------------------------ reading

@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_read_metadata_keeps_profile_and_camera_tags_upright(tmp_path, fmt):
    path = tmp_path / f"photo.{fmt.lower()}"
    Image.fromarray(random_image((12, 20, 3))).save(path, format=fmt, icc_profile=ICC, exif=camera_exif())
    got = read_metadata(path)
    assert got.icc == ICC
    assert got.exif[:4] in (b"II*\x00", b"MM\x00*")        # raw TIFF block: no "Exif\0\0" prefix
    exif = parse_exif(got.exif)
    assert_camera_exif(exif)
    assert PIXEL_X not in exif.get_ifd(ExifTags.IFD.Exif)  # the source's size is not the output's


def test_read_metadata_of_a_tiff_leaves_out_its_pixel_layout(tmp_path):
    path = tmp_path / "scan.tif"
    Image.fromarray(random_image((12, 20, 3))).save(path, icc_profile=ICC, exif=camera_exif())
    got = read_metadata(path)
    exif = parse_exif(got.exif)
    assert got.icc == ICC
    assert exif.get(ORIENTATION) == 1 and {tag: exif.get(tag) for tag in CAMERA} == CAMERA
    assert not {256, 257, 258, 259, 262, 273, 277, 278, 279, 34675} & set(exif)   # size, strips, profile...


def test_read_metadata_drops_the_thumbnail(tmp_path):
    """IFD1's thumbnail is stored sideways and at the old size: it is not carried over."""
    thumb = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(thumb, "JPEG")
    thumb = thumb.getvalue()

    def entry(tag, kind, count, value):
        return struct.pack("<HHI", tag, kind, count) + value

    # header (8) | IFD0 at 8: Make, Orientation (2 + 24 + 4 = 30) | "Canon\0" at 38 | IFD1 at 44 | thumbnail at 74
    ifd0 = (struct.pack("<H", 2) + entry(MAKE, 2, 6, struct.pack("<I", 38))
            + entry(ORIENTATION, 3, 1, struct.pack("<HH", 6, 0)) + struct.pack("<I", 44))
    ifd1 = (struct.pack("<H", 2) + entry(0x0201, 4, 1, struct.pack("<I", 74))
            + entry(0x0202, 4, 1, struct.pack("<I", len(thumb))) + struct.pack("<I", 0))
    raw = b"II*\x00" + struct.pack("<I", 8) + ifd0 + b"Canon\x00" + ifd1 + thumb
    Image.new("RGB", (8, 6)).save(tmp_path / "t.jpg", exif=b"Exif\x00\x00" + raw)
    assert Image.open(tmp_path / "t.jpg").getexif().get_ifd(ExifTags.IFD.IFD1)    # the source has one

    got = read_metadata(tmp_path / "t.jpg")
    exif = parse_exif(got.exif)
    assert exif.get(MAKE) == "Canon" and exif.get(ORIENTATION) == 1
    assert not exif.get_ifd(ExifTags.IFD.IFD1) and thumb not in got.exif


def test_read_metadata_without_metadata_is_empty(tmp_path):
    Image.fromarray(random_image((8, 8, 3))).save(tmp_path / "plain.png")
    assert read_metadata(tmp_path / "plain.png") == ImageMetadata(exif=None, icc=None)
    assert read_metadata(tmp_path / "plain.png").empty


def test_read_metadata_with_only_a_rotation_has_no_exif(tmp_path):
    """Orientation alone says nothing once the pixels are upright."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    Image.fromarray(random_image((8, 8, 3))).save(tmp_path / "turned.jpg", exif=exif)
    assert read_metadata(tmp_path / "turned.jpg").exif is None


@pytest.mark.parametrize("content", [None, b"", b"not an image at all", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_read_metadata_never_raises(tmp_path, content):
    path = tmp_path / "broken.png"
    if content is not None:
        path.write_bytes(content)
    assert read_metadata(path).empty


def test_metadata_repr_shows_sizes_not_bytes():
    assert repr(ImageMetadata(exif=None, icc=ICC)) == f"ImageMetadata(exif=None, icc=<{len(ICC)} bytes>)"
    assert ImageMetadata().empty and not ImageMetadata(icc=ICC).empty
    assert hash(ImageMetadata()) == hash(ImageMetadata(None, None))     # frozen: usable as a field default


# ------------------------------------------------------------------------------------------ writing

CASES = {   # name: (extension, image, OpenCV parameters)
    "png8": (".png", random_image((12, 20, 3)), ()),
    "png8-alpha": (".png", random_image((12, 20, 4)), ()),
    "png16": (".png", random_image((12, 20, 3), np.uint16), ()),
    "png16-alpha": (".png", random_image((12, 20, 4), np.uint16), ()),
    "jpg": (".jpg", random_image((12, 20, 3)), (cv2.IMWRITE_JPEG_QUALITY, 95)),
    "webp-lossy": (".webp", random_image((12, 20, 3)), (cv2.IMWRITE_WEBP_QUALITY, 95)),
    "webp-lossless": (".webp", random_image((12, 20, 3)), (cv2.IMWRITE_WEBP_QUALITY, 101)),
    "webp-lossy-alpha": (".webp", random_image((12, 20, 4)), (cv2.IMWRITE_WEBP_QUALITY, 95)),
    "webp-lossless-alpha": (".webp", random_image((12, 20, 4)), (cv2.IMWRITE_WEBP_QUALITY, 101)),
    "tif8": (".tif", random_image((12, 20, 3)), ()),
    "tif16-alpha": (".tiff", random_image((12, 20, 4), np.uint16), ()),
}
NO_EXIF = {".tif", ".tiff"}              # TIFF gets the profile only (see the module's docstring)


@pytest.mark.parametrize("case", CASES)
def test_embedded_metadata_reads_back_and_pixels_are_identical(case, meta):
    ext, arr, params = CASES[case]
    plain = encode(ext, arr, params)
    out = embed_metadata(plain, ext, meta)
    im = pil_open(out)
    assert im.info.get("icc_profile") == ICC
    if ext not in NO_EXIF:
        assert_camera_exif(im.getexif())
    before, after = decode(plain), decode(out)          # lossy: the same bitstream decodes the same
    assert before.shape == after.shape and before.dtype == after.dtype
    assert np.array_equal(before, after)


@pytest.mark.parametrize("case", CASES)
def test_empty_metadata_leaves_the_bytes_alone(case):
    ext, arr, params = CASES[case]
    plain = encode(ext, arr, params)
    assert embed_metadata(plain, ext, ImageMetadata()) is plain
    assert embed_metadata(plain, ext, ImageMetadata(exif=b"", icc=b"")) is plain


def test_bmp_is_left_alone(meta):
    plain = encode(".bmp", random_image((12, 20, 3)))
    assert embed_metadata(plain, ".bmp", meta) == plain


@pytest.mark.parametrize("case", CASES)
def test_embedding_again_replaces_the_metadata(case, meta):
    """Metadata already in the file is replaced, not duplicated: embedding twice = embedding the last."""
    ext, arr, params = CASES[case]
    plain = encode(ext, arr, params)
    other = ImageMetadata(exif=parse_exif(meta.exif).tobytes()[6:].replace(b"Canon", b"Nikon"), icc=ICC + b"\0\0")
    twice = embed_metadata(embed_metadata(plain, ext, other), ext, meta)
    if ext in NO_EXIF:       # TIFF appends a new IFD (the old one stays as unused bytes)
        assert pil_open(twice).info["icc_profile"] == ICC and np.array_equal(decode(twice), decode(plain))
    else:
        assert twice == embed_metadata(plain, ext, meta)


def test_extension_spelling_does_not_matter(meta):
    plain = encode(".jpg", random_image((12, 20, 3)))
    expected = embed_metadata(plain, ".jpg", meta)
    assert embed_metadata(plain, "JPEG", meta) == embed_metadata(plain, ".Jpg", meta) == expected


def test_exif_with_the_jpeg_prefix_is_accepted(meta):
    plain = encode(".png", random_image((12, 20, 3)))
    prefixed = ImageMetadata(exif=b"Exif\x00\x00" + meta.exif, icc=meta.icc)
    assert embed_metadata(plain, ".png", prefixed) == embed_metadata(plain, ".png", meta)


@pytest.mark.parametrize("ext, data", [(".png", b"not a png"), (".jpg", b"\xff\xd8\xff\xe0\x00"),
                                       (".webp", b"RIFF\x04\x00\x00\x00WEBP"), (".tif", b"II*\x00\xff\xff\xff\xff"),
                                       (".png", b"")])
def test_bytes_that_do_not_parse_are_returned_unchanged(ext, data, meta):
    assert embed_metadata(data, ext, meta) == data


@pytest.mark.parametrize("case", CASES)
def test_truncated_files_never_raise(case, meta):
    ext, arr, params = CASES[case]
    plain = encode(ext, arr, params)
    for cut in range(0, len(plain), max(1, len(plain) // 50)):
        assert isinstance(embed_metadata(plain[:cut], ext, meta), bytes)


# PNG

def test_png_chunks_go_right_after_ihdr_with_valid_crcs(meta):
    out = embed_metadata(encode(".png", random_image((12, 20, 3))), ".png", meta)
    assert png_chunks(out)[:4] == [b"IHDR", b"iCCP", b"eXIf", b"IDAT"]


def test_png_profile_replaces_other_colour_space_chunks(meta):
    plain = encode(".png", random_image((12, 20, 3)))
    ihdr_end = 8 + 12 + 13

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    tagged = plain[:ihdr_end] + chunk(b"sRGB", b"\x00") + chunk(b"gAMA", struct.pack(">I", 45455)) + plain[ihdr_end:]
    assert pil_open(tagged).info.get("srgb") == 0                       # the chunks are really there
    kinds = png_chunks(embed_metadata(tagged, ".png", meta))
    assert kinds.count(b"iCCP") == 1 and b"sRGB" not in kinds and b"gAMA" not in kinds
    kinds = png_chunks(embed_metadata(tagged, ".png", ImageMetadata(exif=meta.exif)))
    assert b"sRGB" in kinds and b"gAMA" in kinds                        # no profile: nothing to replace


# grey outputs: a profile must describe the output's colour space

@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif"])
def test_rgb_profile_is_left_out_of_grey_output_but_exif_is_kept(ext, meta):
    plain = encode(ext, random_image((12, 20)))
    im = pil_open(embed_metadata(plain, ext, meta))
    assert "icc_profile" not in im.info
    if ext not in NO_EXIF:
        assert_camera_exif(im.getexif())


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif"])
def test_grey_profile_goes_into_grey_output(ext, meta):
    plain = encode(ext, random_image((12, 20)))
    out = embed_metadata(plain, ext, ImageMetadata(exif=meta.exif, icc=GREY_ICC))
    assert pil_open(out).info.get("icc_profile") == GREY_ICC
    assert np.array_equal(decode(out), decode(plain))
    # ...and a grey profile stays out of colour output
    colour = encode(ext, random_image((12, 20, 3)))
    assert "icc_profile" not in pil_open(embed_metadata(colour, ext, ImageMetadata(icc=GREY_ICC))).info


# JPEG

def test_jpeg_segments_follow_jfif(meta):
    out = embed_metadata(encode(".jpg", random_image((12, 20, 3))), ".jpg", meta)
    segments = jpeg_segments(out)
    assert [m for m, _ in segments[:3]] == [0xE0, 0xE1, 0xE2]
    assert segments[0][1].startswith(b"JFIF\x00")
    assert segments[1][1] == b"Exif\x00\x00" + meta.exif
    assert segments[2][1] == b"ICC_PROFILE\x00\x01\x01" + ICC


def test_jpeg_large_profile_is_split_into_numbered_segments():
    big = (ICC[:4] + ICC[4:] * 300)[:150_000]                # a 150 KB profile, header kept
    big = struct.pack(">I", len(big)) + big[4:]
    out = embed_metadata(encode(".jpg", random_image((12, 20, 3))), ".jpg", ImageMetadata(icc=big))
    icc_segments = [p for m, p in jpeg_segments(out) if m == 0xE2 and p.startswith(b"ICC_PROFILE\x00")]
    assert [(p[12], p[13]) for p in icc_segments] == [(1, 3), (2, 3), (3, 3)]
    assert all(len(p) - 14 <= JPEG_ICC_CHUNK == 65519 for p in icc_segments)
    assert b"".join(p[14:] for p in icc_segments) == big
    assert pil_open(out).info["icc_profile"] == big


def test_jpeg_exif_too_big_for_a_segment_is_dropped_not_broken(meta):
    big_exif = meta.exif + b"\x00" * 65_600                   # trailing bytes: still a valid TIFF block
    out = embed_metadata(encode(".jpg", random_image((12, 20, 3))), ".jpg", ImageMetadata(exif=big_exif, icc=ICC))
    im = pil_open(out)
    assert im.info["icc_profile"] == ICC and "exif" not in im.info
    assert [m for m, _ in jpeg_segments(out)][:2] == [0xE0, 0xE2]


# WebP

@pytest.mark.parametrize("case", [c for c in CASES if c.startswith("webp")])
def test_webp_extended_layout(case, meta):
    _, arr, params = CASES[case]
    out = embed_metadata(encode(".webp", arr, params), ".webp", meta)
    chunks = webp_chunks(out)
    kinds = [k for k, _ in chunks]
    image = next(i for i, k in enumerate(kinds) if k in (b"VP8 ", b"VP8L"))
    assert kinds[:2] == [b"VP8X", b"ICCP"] and kinds[image + 1] == b"EXIF"
    vp8x = chunks[0][1]
    flags, width, height = vp8x[0], int.from_bytes(vp8x[4:7], "little") + 1, int.from_bytes(vp8x[7:10], "little") + 1
    assert (width, height) == (20, 12)
    assert flags & 0x20 and flags & 0x08                                 # ICC, EXIF
    assert bool(flags & 0x10) == (arr.shape[2] == 4)                     # alpha


def test_webp_odd_sized_chunks_are_padded(meta):
    odd = ImageMetadata(exif=meta.exif + b"\x00" * (1 - len(meta.exif) % 2), icc=ICC + b"\x00")
    assert len(odd.exif) % 2 == 1 and len(odd.icc) % 2 == 1
    out = embed_metadata(encode(".webp", random_image((12, 20, 3)), (cv2.IMWRITE_WEBP_QUALITY, 95)), ".webp", odd)
    assert [k for k, _ in webp_chunks(out)] == [b"VP8X", b"ICCP", b"VP8 ", b"EXIF"]
    im = pil_open(out)
    assert im.info["icc_profile"] == odd.icc
    assert_camera_exif(im.getexif())


def test_module_imports_nothing_heavy():
    """The CLI imports this before parsing arguments: no PIL, numpy or OpenCV at import time."""
    probe = ("import sys, restore.sr.metadata\n"
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'PIL', 'numpy', 'cv2', 'torch'}))")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# ------------------------------------------------------------ wired into restore.sr.images and the CLI

class TestWiredIntoImages:
    """``read_image`` puts the input's metadata on ``Planes.metadata``; ``write_image`` writes it."""

    @pytest.fixture
    def phone_jpg(self, tmp_path) -> Path:
        """A 12x20 JPEG (stored sideways: Orientation 6) with a profile and camera EXIF."""
        path = tmp_path / "phone.jpg"
        Image.fromarray(random_image((12, 20, 3))).save(path, icc_profile=ICC, exif=camera_exif(6), quality=95)
        return path

    def test_read_image_carries_the_metadata(self, phone_jpg):
        from restore.sr.images import read_image

        planes = read_image(phone_jpg)
        assert isinstance(planes.metadata, ImageMetadata)
        assert planes.metadata == read_metadata(phone_jpg)
        assert planes.metadata.icc == ICC
        assert_camera_exif(parse_exif(planes.metadata.exif))
        assert planes.with_pixels(planes.rgb, None).metadata == planes.metadata     # survives processing

    def test_file_without_metadata_reads_as_empty(self, tmp_path):
        from restore.sr.images import read_image, write_image

        Image.fromarray(random_image((8, 8, 3))).save(tmp_path / "plain.png")
        planes = read_image(tmp_path / "plain.png")
        assert planes.metadata.empty
        write_image(tmp_path / "out.png", planes)
        assert png_chunks((tmp_path / "out.png").read_bytes()) == [b"IHDR", b"IDAT", b"IEND"]

    @pytest.mark.parametrize("ext", [".png", ".jpg", ".webp"])
    def test_write_image_keeps_profile_and_upright_exif(self, phone_jpg, tmp_path, ext):
        from restore.sr.images import read_image, write_image

        out = tmp_path / f"out{ext}"
        write_image(out, read_image(phone_jpg))
        im = pil_open(out.read_bytes())
        assert im.size == (12, 20)                                # upright: portrait
        assert im.info.get("icc_profile") == ICC
        assert_camera_exif(im.getexif())

    def test_write_image_keeps_profile_in_tiff(self, phone_jpg, tmp_path):
        from restore.sr.images import read_image, write_image

        write_image(tmp_path / "out.tif", read_image(phone_jpg))
        assert pil_open((tmp_path / "out.tif").read_bytes()).info.get("icc_profile") == ICC

    def test_grey_alpha_png_keeps_its_metadata(self, tmp_path):
        """Grey + alpha is written by PIL, not OpenCV: the metadata must go in there too."""
        from restore.sr.images import read_image, write_image

        Image.fromarray(random_image((8, 10, 2)), mode="LA").save(
            tmp_path / "ga.png", icc_profile=GREY_ICC, exif=camera_exif(1))
        planes = read_image(tmp_path / "ga.png")
        write_image(tmp_path / "out.png", planes)
        im = pil_open((tmp_path / "out.png").read_bytes())
        assert im.mode == "LA" and im.info.get("icc_profile") == GREY_ICC
        assert_camera_exif(im.getexif())

    def test_command_line_output_keeps_the_metadata(self, phone_jpg, tmp_path, tiny_weights):
        from restore.sr.cli import main

        out = tmp_path / "x4.png"
        assert main([str(phone_jpg), "-o", str(out), "--weights", str(tiny_weights), "--quiet"]) == 0
        im = pil_open(out.read_bytes())
        assert im.size == (48, 80)                                # x4, upright
        assert im.info.get("icc_profile") == ICC
        assert_camera_exif(im.getexif())
