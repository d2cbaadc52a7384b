"""Tree edits whose cost follows the change, not the size of the directory it lands in.

`system/catalyst-config` holds `organizations/<slug>/…` for every Organization: the
`organizations` tree has one entry per Organization. Git stores a directory as one object, so a
commit that changes one Organization rewrites that object whole — unavoidable in Git's format.
What is avoidable is doing it in Python per entry: dulwich parses and re-serializes each of the
N entries (about 140 ms a commit at 20,000 Organizations). Here a tree is kept as its sorted list
of raw entries (parsed once per process, LRU-cached by object id); an edit is a binary search and a
list splice, serializing is one `bytes.join`, and the new object is written as a loose object
(zlib level 1; stored uncompressed above STORE_ABOVE) without being parsed back. What remains
proportional to N is memory bandwidth: join, SHA-1 and write of the ~45-byte-per-entry object
(≈1 MB at 20,000 Organizations), a few milliseconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import zlib
from bisect import bisect_left
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from dulwich.object_store import DiskObjectStore
from dulwich.objects import ObjectID
from dulwich.objects import Tree as DulwichTree

DIR_MODE = 0o040000
CACHE_SIZE = 64
# Trees larger than this are written as stored (uncompressed) zlib streams: 20-byte hashes barely
# compress, and compressing a 1 MB tree costs more than the rest of the commit; `git gc` packs
# (and delta-compresses) them later.
STORE_ABOVE = 256 * 1024
Change = tuple[bytes, int | None, bytes | None]  # path, mode (None: delete), hex sha (None: delete)


@dataclass
class Entries:
    """A tree's entries in Git order: `keys` (name, plus "/" for a directory) beside the raw
    serialized entries (`<mode> <name>\\0<20-byte sha>`)."""

    keys: list[bytes]
    raw: list[bytes]

    def find(self, name: bytes) -> int | None:
        for key in (name + b"/", name):  # a directory sorts as if its name ended in "/"
            i = bisect_left(self.keys, key)
            if i < len(self.keys) and self.keys[i] == key:
                return i
        return None

    def lookup(self, name: bytes) -> tuple[int, bytes] | None:
        """(mode, hex sha) of `name`, or None."""
        i = self.find(name)
        if i is None:
            return None
        entry = self.raw[i]
        space, nul = entry.index(b" "), entry.index(b"\0")
        return int(entry[:space], 8), entry[nul + 1 :].hex().encode()

    def put(self, name: bytes, mode: int, hexsha: bytes) -> None:
        self.remove(name)
        key = name + b"/" if mode == DIR_MODE else name
        i = bisect_left(self.keys, key)
        self.keys.insert(i, key)
        self.raw.insert(i, b"%o %s\0%s" % (mode, name, bytes.fromhex(hexsha.decode())))

    def remove(self, name: bytes) -> None:
        i = self.find(name)
        if i is not None:
            del self.keys[i]
            del self.raw[i]

    def copy(self) -> Entries:
        return Entries(list(self.keys), list(self.raw))


def parse(data: bytes) -> Entries:
    keys, raw = [], []
    pos, end = 0, len(data)
    while pos < end:
        space = data.index(b" ", pos)
        nul = data.index(b"\0", space)
        mode = data[pos:space]
        name = data[space + 1 : nul]
        raw.append(data[pos : nul + 21])
        keys.append(name + b"/" if mode in (b"40000", b"040000") else name)
        pos = nul + 21
    return Entries(keys, raw)


class TreeStore:
    """Reads and writes tree objects of one repository's object store, with an LRU of parsed trees."""

    def __init__(self, store: DiskObjectStore) -> None:
        self.store = store
        self.objects = Path(store.path)

    def read(self, hexsha: bytes) -> Entries:
        with _cache_lock:
            cached = _cache.get((self.objects, hexsha))
            if cached is not None:
                _cache.move_to_end((self.objects, hexsha))
                return cached
        entries = parse(self._raw(hexsha))
        _remember(self.objects, hexsha, entries)
        return entries

    def _raw(self, hexsha: bytes) -> bytes:
        loose = self.objects / hexsha[:2].decode() / hexsha[2:].decode()
        try:
            data = zlib.decompress(loose.read_bytes())
        except FileNotFoundError:  # packed: dulwich reads it
            type_num, raw = self.store.get_raw(ObjectID(hexsha))
            if type_num != DulwichTree.type_num:
                raise KeyError(hexsha) from None
            return bytes(raw)
        header, _, body = data.partition(b"\0")
        if not header.startswith(b"tree "):
            raise KeyError(hexsha)
        return body

    def write(self, entries: Entries) -> bytes:
        body = b"".join(entries.raw)
        obj = b"tree %d\0" % len(body) + body
        hexsha = hashlib.sha1(obj, usedforsecurity=False).hexdigest().encode()
        path = self.objects / hexsha[:2].decode() / hexsha[2:].decode()
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(zlib.compress(obj, 0 if len(obj) > STORE_ABOVE else 1))
                os.chmod(tmp, 0o444)
                os.replace(tmp, path)  # atomic: readers see the whole object or none
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        _remember(self.objects, hexsha, entries)
        return hexsha

    def lookup(self, tree: bytes, path: bytes) -> tuple[int, bytes] | None:
        """(mode, hex sha) at `path` ("a/b") under tree `tree`, or None."""
        mode, sha = DIR_MODE, tree
        for part in path.split(b"/"):
            if mode != DIR_MODE:
                return None
            found = self.read(sha).lookup(part)
            if found is None:
                return None
            mode, sha = found
        return mode, sha

    def edit(self, tree: bytes | None, changes: list[Change]) -> bytes | None:
        """Apply `changes` under `tree` (None: an empty tree); the new tree's id, or None when
        it ends up empty (Git has no empty directories)."""
        entries = self.read(tree).copy() if tree else Entries([], [])
        nested: dict[bytes, list[Change]] = {}
        for path, mode, sha in changes:
            head, slash, rest = path.partition(b"/")
            if slash:
                nested.setdefault(head, []).append((rest, mode, sha))
            elif sha is None or mode is None:
                entries.remove(head)
            else:
                entries.put(head, mode, sha)
        for name, sub in nested.items():
            current = entries.lookup(name)
            subtree = current[1] if current and current[0] == DIR_MODE else None
            new = self.edit(subtree, sub)
            if new is None:
                entries.remove(name)
            else:
                entries.put(name, DIR_MODE, new)
        if not entries.raw:
            return None
        return self.write(entries)


_cache: OrderedDict[tuple[Path, bytes], Entries] = OrderedDict()
_cache_lock = threading.Lock()


def _remember(objects: Path, hexsha: bytes, entries: Entries) -> None:
    with _cache_lock:
        _cache[(objects, hexsha)] = entries
        _cache.move_to_end((objects, hexsha))
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
