"""Pieces of the runtime layer: .deb (ar) archives, path filters, accounts."""

from __future__ import annotations

import pytest

from tools.oci.rootfs import PathFilter, accounts, read_ar


def _ar_member(name: str, data: bytes) -> bytes:
    header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
    return header + data + (b"\n" if len(data) % 2 else b"")


def test_ar_members_are_read_with_odd_sizes_padded() -> None:
    archive = b"!<arch>\n" + _ar_member("debian-binary", b"2.0\n") + _ar_member("data.tar.xz", b"odd")
    assert read_ar(archive) == {"debian-binary": b"2.0\n", "data.tar.xz": b"odd"}


def test_a_corrupt_ar_archive_is_refused() -> None:
    with pytest.raises(ValueError):
        read_ar(b"!<arch>\nnot a header")


def test_excluding_a_directory_excludes_everything_under_it_but_kept_files() -> None:
    paths = PathFilter(exclude=["usr/share/doc", "usr/lib/*/gconv"], keep=["usr/share/doc/*/copyright"])
    assert not paths.wanted("usr/share/doc")
    assert not paths.wanted("usr/share/doc/libc6/changelog.Debian.gz")
    assert paths.wanted("usr/share/doc/libc6/copyright")
    assert not paths.wanted("usr/lib/x86_64-linux-gnu/gconv/UTF-16.so")
    assert paths.wanted("usr/lib/x86_64-linux-gnu/libc.so.6")
    assert paths.wanted("usr/share/docs-elsewhere")


def test_the_service_user_is_in_passwd_and_group_with_its_own_id() -> None:
    passwd, group = accounts("ticketflow", 65532)
    assert b"ticketflow:x:65532:65532:ticketflow:/home/ticketflow:/usr/sbin/nologin\n" in passwd
    assert b"ticketflow:x:65532:\n" in group
    assert passwd.startswith(b"root:x:0:0:")
