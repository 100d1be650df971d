"""What the first bytes of an audio stream say about it: a RIFF/WAVE header, FLAC or Ogg.

Riva clients may declare neither an encoding nor a sample rate and stream a whole file from its
first byte (NVIDIA python-clients' ``transcribe_file.py`` and ``riva_streaming_asr_client.py``
since 2.12, through ``riva.client.AudioChunkFileIterator``); the server reads the container. This
module recognizes the container from its magic bytes and parses a WAV header up to the start of
its ``data`` chunk: format (integer PCM of 8, 16, 24 or 32 bits, IEEE float, A-law, mu-law,
``WAVE_FORMAT_EXTENSIBLE`` of those), channels, rate, and where the samples begin, so the header
bytes are never decoded as samples. FLAC and Ogg carry their own headers; libsndfile reads them.

It depends on nothing else in Rivulet; ``rivulet.core.audio`` uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

MAGIC_BYTES = 4
RIFF, FLAC, OGG = b"RIFF", b"fLaC", b"OggS"
CONTAINERS = {RIFF: "WAV", FLAC: "FLAC", OGG: "Ogg"}
# A header longer than this (metadata chunks before `data`) is refused rather than buffered forever.
MAX_HEADER_BYTES = 1024 * 1024

# WAVE format tags (mmreg.h)
PCM, IEEE_FLOAT, ALAW, MULAW, EXTENSIBLE = 0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE
FORMAT_NAMES = {PCM: "PCM", IEEE_FLOAT: "IEEE float", ALAW: "A-law", MULAW: "mu-law"}
VALID_BITS = {PCM: (8, 16, 24, 32), IEEE_FLOAT: (32, 64), ALAW: (8,), MULAW: (8,)}
# data sizes that streaming writers put in a header they cannot go back and fix
UNKNOWN_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)


class WavHeaderError(ValueError):
    """A RIFF/WAVE header that cannot be used; the message says what is wrong with it."""


@dataclass(frozen=True)
class WavHeader:
    format_tag: int  # PCM, IEEE_FLOAT, ALAW or MULAW (an EXTENSIBLE header's sub-format)
    channels: int
    sample_rate_hz: int
    bits_per_sample: int
    data_offset: int  # where the samples begin
    data_bytes: int | None  # the data chunk's declared size; None when the writer did not know it

    @property
    def frame_bytes(self) -> int:
        return self.channels * self.bits_per_sample // 8

    def describe(self) -> str:
        return (
            f"{FORMAT_NAMES[self.format_tag]} {self.bits_per_sample}-bit, {self.channels} channel(s), "
            f"{self.sample_rate_hz} Hz"
        )


def container_of(head: bytes) -> str | None:
    """'WAV', 'FLAC' or 'Ogg' when `head` (at least MAGIC_BYTES long) starts a file of that kind."""
    return CONTAINERS.get(head[:MAGIC_BYTES])


def _u16(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 2], "little")


def _u32(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 4], "little")


def _format_chunk(body: bytes) -> tuple[int, int, int, int]:
    """(format tag, channels, rate, bits) of a `fmt ` chunk."""
    if len(body) < 16:
        raise WavHeaderError(f"its fmt chunk has {len(body)} bytes, fewer than the 16 every WAV file has")
    tag, channels, rate, bits = _u16(body, 0), _u16(body, 2), _u32(body, 4), _u16(body, 14)
    if tag == EXTENSIBLE:
        if len(body) < 40:
            raise WavHeaderError("its WAVE_FORMAT_EXTENSIBLE fmt chunk is shorter than 40 bytes")
        tag = _u16(body, 24)  # the first two bytes of the sub-format GUID are the format tag
    if tag not in VALID_BITS:
        raise WavHeaderError(
            f"its sample format (WAVE format tag 0x{tag:04x}) is not supported: "
            "use PCM (8/16/24/32-bit), IEEE float, A-law or mu-law"
        )
    if bits not in VALID_BITS[tag]:
        raise WavHeaderError(
            f"{FORMAT_NAMES[tag]} with {bits} bits per sample is not supported "
            f"(use {', '.join(map(str, VALID_BITS[tag]))})"
        )
    if channels < 1:
        raise WavHeaderError("its header says 0 channels")
    return tag, channels, rate, bits


def parse_wav_header(head: bytes) -> WavHeader | None:
    """The header of the WAV file that `head` starts; None while `head` ends before the data chunk.

    Raises WavHeaderError for a header that is not RIFF/WAVE, has no usable `fmt ` chunk before
    `data`, or is longer than MAX_HEADER_BYTES.
    """
    if len(head) < 12:
        return None
    if head[:4] != RIFF or head[8:12] != b"WAVE":
        raise WavHeaderError("it starts with RIFF but is not a RIFF/WAVE file")
    fmt: tuple[int, int, int, int] | None = None
    pos = 12
    while pos + 8 <= len(head):
        chunk_id, size = head[pos : pos + 4], _u32(head, pos + 4)
        if chunk_id == b"data":
            if fmt is None:
                raise WavHeaderError("its data chunk comes before any fmt chunk")
            tag, channels, rate, bits = fmt
            return WavHeader(tag, channels, rate, bits, pos + 8, None if size in UNKNOWN_SIZES else size)
        end = pos + 8 + size + (size % 2)  # chunks are padded to an even size
        if end > MAX_HEADER_BYTES:
            raise WavHeaderError(
                f"no data chunk within its first {MAX_HEADER_BYTES} bytes (a {chunk_id!r} chunk of {size} "
                "bytes is in the way)"
            )
        if end > len(head):
            return None  # the rest of this chunk has not arrived yet
        if chunk_id == b"fmt ":
            fmt = _format_chunk(head[pos + 8 : pos + 8 + size])
        pos = end
    return None
