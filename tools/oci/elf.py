"""Just enough of 64-bit little-endian ELF to know what an executable or shared object needs at load time.

- `interpreter`: the program interpreter (dynamic loader) an executable names (PT_INTERP);
- `dynamic_needs`: the libraries a file links (DT_NEEDED) and where it says to look for them
  (DT_RUNPATH, DT_RPATH), as the dynamic loader reads them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_PT_LOAD, _PT_DYNAMIC, _PT_INTERP = 1, 2, 3
_DT_NEEDED, _DT_STRTAB, _DT_RPATH, _DT_RUNPATH = 1, 5, 15, 29


@dataclass(frozen=True)
class Segment:
    type: int
    offset: int
    vaddr: int
    filesz: int


@dataclass(frozen=True)
class DynamicNeeds:
    needed: list[str]
    search_paths: list[str]  # RUNPATH or RPATH entries, `$ORIGIN` not expanded


def is_elf(data: bytes) -> bool:
    return data[:4] == b"\x7fELF"


def _segments(data: bytes) -> list[Segment]:
    if not is_elf(data) or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    segments = []
    for index in range(phnum):
        at = phoff + index * phentsize
        p_type = struct.unpack_from("<I", data, at)[0]
        offset, vaddr = struct.unpack_from("<QQ", data, at + 8)
        filesz = struct.unpack_from("<Q", data, at + 32)[0]
        segments.append(Segment(p_type, offset, vaddr, filesz))
    return segments


def interpreter(data: bytes) -> str | None:
    for segment in _segments(data):
        if segment.type == _PT_INTERP:
            return data[segment.offset : segment.offset + segment.filesz].rstrip(b"\0").decode()
    return None


def _file_offset(segments: list[Segment], vaddr: int) -> int:
    for segment in segments:
        if segment.type == _PT_LOAD and segment.vaddr <= vaddr < segment.vaddr + segment.filesz:
            return vaddr - segment.vaddr + segment.offset
    raise ValueError(f"address {vaddr:#x} is in no loaded segment")


def dynamic_needs(data: bytes) -> DynamicNeeds:
    segments = _segments(data)
    dynamic = next((s for s in segments if s.type == _PT_DYNAMIC), None)
    if dynamic is None:
        return DynamicNeeds([], [])
    entries = []
    for at in range(dynamic.offset, dynamic.offset + dynamic.filesz, 16):
        tag, value = struct.unpack_from("<qQ", data, at)
        if tag == 0:
            break
        entries.append((tag, value))
    strtab = _file_offset(segments, next(value for tag, value in entries if tag == _DT_STRTAB))

    def string(offset: int) -> str:
        start = strtab + offset
        return data[start : data.index(b"\0", start)].decode()

    needed = [string(value) for tag, value in entries if tag == _DT_NEEDED]
    runpath = [string(value) for tag, value in entries if tag == _DT_RUNPATH]
    rpath = [string(value) for tag, value in entries if tag == _DT_RPATH]
    # The loader ignores DT_RPATH when DT_RUNPATH is present.
    paths = [p for entry in (runpath or rpath) for p in entry.split(":") if p]
    return DynamicNeeds(needed, paths)
