"""Just enough of 64-bit little-endian ELF for the images: what a file needs at load time, and its debug information.

- `interpreter`: the program interpreter (dynamic loader) an executable names (PT_INTERP);
- `dynamic_needs`: the libraries a file links (DT_NEEDED) and where it says to look for them
  (DT_RUNPATH, DT_RPATH), as the dynamic loader reads them;
- `without_debug_info`: the file without the contents of its `.debug_*` sections, as
  `strip --strip-debug` would leave it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_PT_LOAD, _PT_DYNAMIC, _PT_INTERP = 1, 2, 3
_DT_NEEDED, _DT_STRTAB, _DT_RPATH, _DT_RUNPATH = 1, 5, 15, 29
_SHT_NOBITS = 8
_SHF_ALLOC = 0x2
_SECTION_HEADER = struct.Struct("<IIQQQQIIQQ")


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


@dataclass(frozen=True)
class _Section:
    name: str
    type: int
    flags: int
    offset: int
    size: int
    align: int

    @property
    def in_file(self) -> bool:
        return self.type != _SHT_NOBITS and self.size > 0


def _sections(data: bytes) -> list[_Section]:
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    raw = [_SECTION_HEADER.unpack_from(data, shoff + index * shentsize) for index in range(shnum)]
    names_at = raw[shstrndx][4]
    sections = []
    for name, type_, flags, _addr, offset, size, _link, _info, align, _entsize in raw:
        start = names_at + name
        sections.append(_Section(data[start : data.index(b"\0", start)].decode(), type_, flags, offset, size, align))
    return sections


def without_debug_info(data: bytes) -> bytes | None:
    """`data` with its `.debug_*` sections emptied and the file compacted; None if it has none.

    Only touches the usual layout, where debug information sits after everything the loader
    maps: the bytes up to the end of the last segment stay as they are, the other sections
    after them (symbol tables, section names) move up, and the debug sections keep their
    headers, so every section keeps its index. None as well when the layout is another one.
    """
    if not is_elf(data):
        return None
    segments = _segments(data)
    shoff, shentsize, shnum = struct.unpack_from("<Q", data, 0x28)[0], *struct.unpack_from("<HH", data, 0x3A)
    sections = _sections(data)
    mapped_end = max(segment.offset + segment.filesz for segment in segments)
    tail = [i for i, s in enumerate(sections) if s.in_file and s.offset >= mapped_end]
    debug = {i for i in tail if sections[i].name.startswith(".debug")}
    usual = (
        shoff >= mapped_end
        and all(not sections[i].flags & _SHF_ALLOC for i in tail)
        and all(s.offset + s.size <= mapped_end for i, s in enumerate(sections) if s.in_file and i not in tail)
    )
    if not debug or not usual:
        return None

    out = bytearray(data[:mapped_end])
    new_offsets = {}
    for index in sorted(tail, key=lambda i: sections[i].offset):
        section = sections[index]
        if index in debug:
            continue
        out += bytes(-len(out) % max(1, section.align))
        new_offsets[index] = len(out)
        out += data[section.offset : section.offset + section.size]
    out += bytes(-len(out) % 8)
    new_shoff = len(out)
    for index in range(shnum):
        header = list(_SECTION_HEADER.unpack_from(data, shoff + index * shentsize))
        if index in debug:
            header[4], header[5] = new_shoff, 0  # sh_offset, sh_size: an empty section
        elif index in new_offsets:
            header[4] = new_offsets[index]
        out += _SECTION_HEADER.pack(*header)
    struct.pack_into("<Q", out, 0x28, new_shoff)
    return bytes(out)
