"""Keep an input image's EXIF and ICC profile in the super-resolution output (issue 12).

OpenCV reads and writes pixels only. This module reads the metadata of the input with PIL, lazily (no
pixel is decoded), and splices it into the bytes ``cv2.imencode`` produced for the output. Nothing is
re-encoded: the image data chunks/segments are copied byte for byte, so pixels are untouched.

What goes where:

=========  ===================================================  ======================================
format     ICC profile                                          EXIF
=========  ===================================================  ======================================
PNG        ``iCCP`` chunk right after ``IHDR`` (zlib)           ``eXIf`` chunk right after it
JPEG       ``APP2 ICC_PROFILE`` segments after SOI/APP0,        ``APP1 Exif`` segment after SOI/APP0;
           numbered chunks of at most 65,519 bytes              dropped if over one segment (~64 KB)
WebP       ``ICCP`` chunk right after ``VP8X`` (the simple      ``EXIF`` chunk after the image data
           format is converted to the extended one)
TIFF       tag 34675 in a copy of the first IFD, appended       not written: its tags would have to be
           (offsets already in the file stay valid)             merged into the IFD and its sub-IFDs
                                                                relocated
BMP        not written (OpenCV writes no BMP v5 header, the     not written (BMP has no EXIF)
           only one with room for a profile)
=========  ===================================================  ======================================

Conventions:

* ``ImageMetadata.exif`` is the raw TIFF-structured EXIF block, starting with its byte-order mark
  (``II*\\0`` or ``MM\\0*``), **without** JPEG's ``Exif\\0\\0`` prefix: that is what PNG's ``eXIf`` and
  WebP's ``EXIF`` chunks hold; the JPEG writer adds the prefix (and :func:`embed_metadata` tolerates a
  block that already has it).
* ``ImageMetadata.icc`` is the whole ICC profile, as found in the file.
* The EXIF describes the *upright* image that :func:`restore.sr.images.read_image` returns: its
  Orientation tag is set to 1 (the pixels were already rotated), and tags that describe the source
  file's pixel layout (TIFF strip/tile structure, EXIF pixel dimensions, the thumbnail in IFD1) are
  dropped, since the output does not share them. The EXIF is re-serialised by PIL; maker notes are
  copied as opaque bytes (a few vendors' offsets inside them may then point elsewhere).
* A profile whose colour space does not match the output (an RGB profile on a grey PNG or JPEG, a
  CMYK profile on anything OpenCV writes) is left out: a wrong profile is worse than none.
* Metadata is best effort: reading never raises (an unreadable file has empty metadata), and
  :func:`embed_metadata` returns the bytes unchanged if it cannot parse them.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

#: EXIF / TIFF tags.
ORIENTATION = 0x0112
EXIF_IFD = 0x8769
#: IFD0 tags that describe a TIFF file's own pixel storage (PIL's ``getexif()`` of a TIFF returns its
#: whole IFD0): width/height, bits, compression, photometric, strips, samples, planar, predictor,
#: extra samples, sample format, tiles, colour map, JPEG thumbnail pointers, XMP, ICC (kept separately).
LAYOUT_TAGS = (256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 320, 322, 323, 324, 325, 338, 339,
               513, 514, 700, 34675)
#: EXIF sub-IFD tags with the source's pixel size (PixelXDimension, PixelYDimension).
SIZE_TAGS = (0xA002, 0xA003)

JPEG_EXIF_HEADER = b"Exif\x00\x00"
JPEG_ICC_HEADER = b"ICC_PROFILE\x00"
#: Largest segment payload: the 16-bit length field counts itself.
JPEG_MAX_PAYLOAD = 0xFFFF - 2
#: Profile bytes per APP2 segment (65,519: the ICC spec's limit, after the 14-byte header).
JPEG_ICC_CHUNK = JPEG_MAX_PAYLOAD - len(JPEG_ICC_HEADER) - 2
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_ICC_NAME = b"ICC profile"
#: Chunks that state the colour space another way; an ``iCCP`` replaces them.
PNG_COLOUR_CHUNKS = {b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"cICP"}
#: WebP ``VP8X`` flag bits.
WEBP_ICC_FLAG, WEBP_ALPHA_FLAG, WEBP_EXIF_FLAG = 0x20, 0x10, 0x08
WEBP_IMAGE_CHUNKS = {b"VP8 ", b"VP8L", b"ANMF"}
#: TIFF tags and field types.
TIFF_ICC_TAG, TIFF_PHOTOMETRIC, TIFF_SHORT, TIFF_UNDEFINED = 34675, 262, 3, 7


class _Unparsable(ValueError):
    """The encoded bytes are not the container their extension says: leave them alone."""


@dataclass(frozen=True)
class ImageMetadata:
    """EXIF (raw TIFF block, no ``Exif\\0\\0`` prefix) and ICC profile of an image; ``None`` when absent."""

    exif: Optional[bytes] = None
    icc: Optional[bytes] = None

    @property
    def empty(self) -> bool:
        return not self.exif and not self.icc

    def __repr__(self) -> str:   # sizes, not kilobytes of binary
        def size(b):
            return "None" if b is None else f"<{len(b)} bytes>"
        return f"ImageMetadata(exif={size(self.exif)}, icc={size(self.icc)})"


# ---------------------------------------------------------------------------------------------- reading

def read_metadata(path: str | Path) -> ImageMetadata:
    """The ICC profile and the upright EXIF of an image file, read with PIL without decoding pixels.

    Never raises: a file PIL cannot open (or parts it cannot parse) gives empty (or partial) metadata.
    """
    try:
        from PIL import Image

        with warnings.catch_warnings():   # PIL warns about odd EXIF; metadata is best effort
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                return ImageMetadata(exif=_read_exif(im), icc=_read_icc(im))
    except Exception:
        return ImageMetadata()


def _read_icc(im) -> Optional[bytes]:
    icc = im.info.get("icc_profile")
    return bytes(icc) if isinstance(icc, (bytes, bytearray)) and icc else None


def _read_exif(im) -> Optional[bytes]:
    """PIL's EXIF of ``im`` with Orientation 1 and no source-layout tags, as a raw TIFF block."""
    try:
        exif = im.getexif()
        for tag in LAYOUT_TAGS:
            exif.pop(tag, None)
        if ORIENTATION in exif:
            exif[ORIENTATION] = 1        # the reader has turned the pixels upright
        if EXIF_IFD in exif:
            sub = exif.get_ifd(EXIF_IFD)
            for tag in SIZE_TAGS:
                sub.pop(tag, None)
            if not sub:
                del exif[EXIF_IFD]
        if not set(exif) - {ORIENTATION}:  # nothing, or only "upright", which is the default
            return None
        return _strip_exif_prefix(exif.tobytes())
    except Exception:
        return None


def _strip_exif_prefix(exif: bytes) -> bytes:
    return exif[len(JPEG_EXIF_HEADER):] if exif.startswith(JPEG_EXIF_HEADER) else exif


# ---------------------------------------------------------------------------------------------- writing

def embed_metadata(encoded: bytes, ext: str, meta: ImageMetadata) -> bytes:
    """``encoded`` (a whole PNG, JPEG, WebP or TIFF file) with ``meta`` spliced in; pixels untouched.

    ``ext`` is the output's extension (``".png"``, ``"jpg"``, ...); TIFF gets the ICC profile only.
    BMP and other types, empty metadata, and bytes that do not parse as the format are returned
    unchanged. Metadata of the same kind already in the file is replaced.
    """
    embed = {".png": _embed_png, ".jpg": _embed_jpeg, ".jpeg": _embed_jpeg, ".webp": _embed_webp,
             ".tif": _embed_tiff, ".tiff": _embed_tiff}
    ext = ext.lower() if ext.startswith(".") else "." + ext.lower()
    if meta.empty or ext not in embed:
        return encoded
    meta = ImageMetadata(exif=_strip_exif_prefix(meta.exif) if meta.exif else None, icc=meta.icc or None)
    try:
        return embed[ext](bytes(encoded), meta)
    except (ValueError, IndexError, OverflowError, struct.error):   # not the format it says: leave it
        return encoded


def _icc_fits(icc: Optional[bytes], grey: bool) -> bool:
    """Whether ``icc`` is a profile for the output's colour space (header bytes 16-19: ``GRAY``/``RGB ``)."""
    return icc is not None and len(icc) >= 128 and icc[16:20] == (b"GRAY" if grey else b"RGB ")


# PNG: signature, then chunks of (length, type, data, CRC of type + data).

def _embed_png(data: bytes, meta: ImageMetadata) -> bytes:
    chunks = _png_chunks(data)
    if not chunks or chunks[0][0] != b"IHDR":
        raise _Unparsable("PNG does not start with IHDR")
    colour_type = chunks[0][1][9]
    icc = meta.icc if _icc_fits(meta.icc, grey=colour_type in (0, 4)) else None
    new = []
    if icc:
        new.append((b"iCCP", PNG_ICC_NAME + b"\x00\x00" + zlib.compress(icc, 9)))
    if meta.exif:
        new.append((b"eXIf", meta.exif))
    if not new:
        return data
    replaced = (PNG_COLOUR_CHUNKS if icc else set()) | ({b"eXIf"} if meta.exif else set())
    kept = [c for c in chunks[1:] if c[0] not in replaced]
    return PNG_SIGNATURE + b"".join(_png_chunk(t, d) for t, d in [chunks[0], *new, *kept])


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if not data.startswith(PNG_SIGNATURE):
        raise _Unparsable("not a PNG")
    chunks, pos = [], len(PNG_SIGNATURE)
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if pos + 12 + length > len(data):
            raise _Unparsable("truncated PNG chunk")
        chunks.append((kind, data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return chunks


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


# JPEG: SOI, then marker segments (0xFF, marker, 16-bit length counting itself, payload) up to SOS,
# then entropy-coded data that is copied as is.

def _embed_jpeg(data: bytes, meta: ImageMetadata) -> bytes:
    segments, scan = _jpeg_segments(data)
    icc = meta.icc if _icc_fits(meta.icc, grey=_jpeg_components(segments) == 1) else None
    exif = meta.exif if meta.exif and len(JPEG_EXIF_HEADER) + len(meta.exif) <= JPEG_MAX_PAYLOAD else None
    exif_segments = [(0xE1, JPEG_EXIF_HEADER + exif)] if exif else []
    icc_segments = [(0xE2, payload) for payload in _jpeg_icc_payloads(icc)]
    if not exif_segments and not icc_segments:
        return data
    kept = [(marker, payload) for marker, payload in segments
            if not (exif_segments and marker == 0xE1 and payload.startswith(JPEG_EXIF_HEADER))
            and not (icc_segments and marker == 0xE2 and payload.startswith(JPEG_ICC_HEADER))]
    at = next((i for i, (marker, _) in enumerate(kept) if marker != 0xE0), len(kept))  # after APP0 (JFIF)
    ordered = kept[:at] + exif_segments + icc_segments + kept[at:]
    return b"\xff\xd8" + b"".join(_jpeg_segment(m, p) for m, p in ordered) + scan


def _jpeg_segments(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """``([(marker, payload), ...] before the first SOS, the rest of the file from SOS on)``."""
    if not data.startswith(b"\xff\xd8"):
        raise _Unparsable("not a JPEG")
    segments, pos = [], 2
    while True:
        if data[pos] != 0xFF:
            raise _Unparsable("JPEG marker expected")
        while data[pos + 1] == 0xFF:             # fill bytes before a marker
            pos += 1
        marker = data[pos + 1]
        if marker == 0xDA:                       # start of scan: the rest is copied untouched
            return segments, data[pos:]
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if length < 2 or pos + 2 + length > len(data):
            raise _Unparsable("truncated JPEG segment")
        segments.append((marker, data[pos + 4:pos + 2 + length]))
        pos += 2 + length


def _jpeg_components(segments: list[tuple[int, bytes]]) -> int:
    """Number of colour components from the frame header (SOF0-15 but DHT, JPG, DAC)."""
    for marker, payload in segments:
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return payload[5]
    raise _Unparsable("JPEG without a frame header")


def _jpeg_icc_payloads(icc: Optional[bytes]) -> list[bytes]:
    """The profile as numbered APP2 payloads (``ICC_PROFILE\\0``, 1-based index, count, chunk)."""
    if not icc:
        return []
    chunks = [icc[i:i + JPEG_ICC_CHUNK] for i in range(0, len(icc), JPEG_ICC_CHUNK)]
    if len(chunks) > 255:                        # over ~16 MB: the numbering cannot hold it
        return []
    return [JPEG_ICC_HEADER + bytes([i + 1, len(chunks)]) + c for i, c in enumerate(chunks)]


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


# WebP: "RIFF", 32-bit little-endian size, "WEBP", then chunks (fourcc, size, data, pad to even).
# The simple format is one VP8/VP8L chunk; metadata needs the extended one, led by a VP8X chunk.

def _embed_webp(data: bytes, meta: ImageMetadata) -> bytes:
    chunks = _webp_chunks(data)
    icc = meta.icc if _icc_fits(meta.icc, grey=False) else None
    if not icc and not meta.exif:
        return data
    if chunks[0][0] != b"VP8X":
        chunks.insert(0, (b"VP8X", _webp_vp8x_for(chunks)))
    drop = ({b"ICCP"} if icc else set()) | ({b"EXIF"} if meta.exif else set())
    chunks = [c for c in chunks if c[0] not in drop]
    if icc:
        chunks.insert(1, (b"ICCP", icc))
    if meta.exif:
        last_image = max(i for i, (kind, _) in enumerate(chunks) if kind in WEBP_IMAGE_CHUNKS)
        chunks.insert(last_image + 1, (b"EXIF", meta.exif))
    chunks[0] = (b"VP8X", _webp_set_flags(chunks[0][1], chunks))
    body = b"WEBP" + b"".join(_webp_chunk(kind, payload) for kind, payload in chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise _Unparsable("not a WebP file")
    end = min(len(data), 8 + struct.unpack("<I", data[4:8])[0])
    chunks, pos = [], 12
    while pos + 8 <= end:
        kind, size = struct.unpack("<4sI", data[pos:pos + 8])
        if pos + 8 + size > end:
            raise _Unparsable("truncated WebP chunk")
        chunks.append((kind, data[pos + 8:pos + 8 + size]))
        pos += 8 + size + (size & 1)
    if not any(kind in WEBP_IMAGE_CHUNKS for kind, _ in chunks):
        raise _Unparsable("WebP without image data")
    return chunks


def _webp_vp8x_for(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """A ``VP8X`` payload (flags 0, canvas size from the bitstream) for a simple-format file."""
    kind, bitstream = next(c for c in chunks if c[0] in WEBP_IMAGE_CHUNKS)
    if kind == b"VP8 ":                          # frame tag (3), start code 9d 01 2a, 14-bit width, height
        if bitstream[3:6] != b"\x9d\x01\x2a":
            raise _Unparsable("bad VP8 start code")
        w, h = (v & 0x3FFF for v in struct.unpack("<HH", bitstream[6:10]))
    else:                                        # VP8L: 0x2f, then 14-bit width-1, 14-bit height-1
        if bitstream[0] != 0x2F:
            raise _Unparsable("bad VP8L signature")
        bits = int.from_bytes(bitstream[1:5], "little")
        w, h = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return bytes(4) + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")


def _webp_set_flags(vp8x: bytes, chunks: list[tuple[bytes, bytes]]) -> bytes:
    """``vp8x`` with the ICC, EXIF and alpha flags saying what ``chunks`` hold (other flags kept)."""
    kinds = {kind for kind, _ in chunks}
    flags = vp8x[0] & ~(WEBP_ICC_FLAG | WEBP_EXIF_FLAG)
    flags |= (WEBP_ICC_FLAG if b"ICCP" in kinds else 0) | (WEBP_EXIF_FLAG if b"EXIF" in kinds else 0)
    if _webp_has_alpha(chunks):
        flags |= WEBP_ALPHA_FLAG
    return bytes([flags]) + vp8x[1:]


def _webp_has_alpha(chunks: list[tuple[bytes, bytes]]) -> bool:
    """An ``ALPH`` chunk, or a lossless bitstream whose header says alpha is used (bit 28)."""
    return any(kind == b"ALPH" or (kind == b"VP8L" and len(data) >= 5 and data[4] & 0x10)
               for kind, data in chunks)


def _webp_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) & 1)


# TIFF (classic, not BigTIFF): header (byte order, 42, offset of the first IFD); an IFD is a count,
# 12-byte entries (tag, type, count, value or offset to it) sorted by tag, and the next IFD's offset.
# Only the profile is written (tag 34675). The first IFD is written again at the end of the file, with
# the profile before it, and the header pointed at it: every offset already in the file stays valid,
# and the old IFD is left as unused bytes.

def _embed_tiff(data: bytes, meta: ImageMetadata) -> bytes:
    order = {b"II*\x00": "<", b"MM\x00*": ">"}.get(data[:4])
    if order is None:
        raise _Unparsable("not a classic TIFF")
    entries, next_ifd = _tiff_first_ifd(data, order)
    photometric = _tiff_short(entries.get(TIFF_PHOTOMETRIC), order)   # 0, 1: grey; 2: RGB; 6: YCbCr
    if photometric not in (0, 1, 2, 6) or not _icc_fits(meta.icc, grey=photometric in (0, 1)):
        return data
    out = data + b"\x00" * (len(data) & 1)                  # values and IFDs start on even offsets
    entries[TIFF_ICC_TAG] = struct.pack(order + "HHII", TIFF_ICC_TAG, TIFF_UNDEFINED, len(meta.icc), len(out))
    out += meta.icc + b"\x00" * (len(meta.icc) & 1)
    ifd = struct.pack(order + "H", len(entries)) + b"".join(entries[t] for t in sorted(entries)) + next_ifd
    return out[:4] + struct.pack(order + "I", len(out)) + out[8:] + ifd


def _tiff_first_ifd(data: bytes, order: str) -> tuple[dict[int, bytes], bytes]:
    """``({tag: 12-byte entry}, the 4 bytes of the next IFD's offset)`` of the first IFD."""
    (at,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[at:at + 2])
    end = at + 2 + 12 * count
    if end + 4 > len(data):
        raise _Unparsable("truncated TIFF IFD")
    entries = [data[i:i + 12] for i in range(at + 2, end, 12)]
    return {struct.unpack(order + "H", e[:2])[0]: e for e in entries}, data[end:end + 4]


def _tiff_short(entry: Optional[bytes], order: str) -> Optional[int]:
    """The value of a one-SHORT entry (stored in the entry itself), else ``None``."""
    if entry is None or struct.unpack(order + "HI", entry[2:8]) != (TIFF_SHORT, 1):
        return None
    return struct.unpack(order + "H", entry[8:10])[0]
