"""planner's own GGUF header reader: metadata and tensor table from a byte stream, never the tensor data.

Why not `gguf.GGUFReader`: it memory-maps the whole file (useless for a remote file, where we want to transfer
only the header through a small-block HfFileSystem file) and fails on hostile input with bare exceptions or
huge allocations. This reader works over anything with `read(n)`, counts the bytes it pulls, bounds every
length by what the file (or a header budget) can hold, and turns every failure into one BadInput line.

The `gguf` package still supplies the tables: value types, ggml types and their block sizes, file types.
Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md (v2/v3: 64-bit counts and lengths).
"""

from __future__ import annotations

import array
import os
import re
import stat
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from planner.errors import BadInput
from planner.types.ggml import LLAMA_MAX_LAYERS, constants
from planner.types.model import ModelFacts, TensorInfo

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32  # GGUF_DEFAULT_ALIGNMENT
MAX_HEADER_BYTES = 64 * 2**20  # no real header is near this: a 262k-token vocabulary is about 6 MiB
MAX_STRING_BYTES = 16 * 2**20  # chat templates are the longest single strings, a few hundred KiB at most
MAX_TENSORS = 2**17  # the biggest real models hold a few thousand tensors
MAX_KV = 2**16  # real files hold tens of keys
MAX_ARRAY_DEPTH = 4  # nested arrays are legal but unused; bound the recursion
GGML_MAX_DIMS = 4  # gguf.cpp rejects more
MAX_ELEMENTS = 2**62  # a tensor with more elements than this is corrupt (ggml counts in int64)
_READ_CHUNK = 64 * 1024  # what one underlying read asks for; remote files add their own block size
# Arrays planner reads hold one entry per layer (at most llama.cpp's LLAMA_MAX_LAYERS, 512); anything longer (a
# vocabulary, merges, scores) is only ever measured, so it stays packed as the file holds it (GgufArray) instead of
# becoming millions of Python objects: a 64 MiB header of one-byte items was 611 MB as a list.
KEEP_ARRAY_ITEMS = 4096
# Strings in arrays must be walked one by one (each has its own length), about 0.3 us each: this many per header
# is under a second. The largest real vocabularies are 262k tokens (Gemma 3) plus up to ~300k merges.
MAX_ARRAY_STRINGS = 2**21
# llama.cpp reads no nested arrays; the format allows them, so a few are parsed, but not millions (each one is a
# Python call: a 64 MiB header of empty nested arrays took 20 s).
MAX_NESTED_ARRAYS = 2**12

# ggml types llama.cpp removed in favour of repacking at load time (ggml/include/ggml.h, ggml/src/ggml.c).
_REMOVED_TYPES = {31: "Q4_0_4_4", 32: "Q4_0_4_8", 33: "Q4_0_8_8", 36: "IQ4_NL_4_4", 37: "IQ4_NL_4_8", 38: "IQ4_NL_8_8"}

# Smallest encodings, used to reject counts no file of this size could hold before allocating anything.
_MIN_KV_BYTES = 8 + 4 + 1  # empty key, type, one-byte value
_MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8  # empty name, n_dims 0, type, offset

# gguf's GGUFValueType -> (struct code, size). gguf owns the type ids (gguf/constants.py); the struct codes are how
# planner reads them from a byte stream. STRING and ARRAY are variable length.
_VT = constants().GGUFValueType
_SCALARS: dict[int, tuple[str, int]] = {
    _VT.UINT8.value: ("B", 1),
    _VT.INT8.value: ("b", 1),
    _VT.UINT16.value: ("H", 2),
    _VT.INT16.value: ("h", 2),
    _VT.UINT32.value: ("I", 4),
    _VT.INT32.value: ("i", 4),
    _VT.FLOAT32.value: ("f", 4),
    _VT.BOOL.value: ("?", 1),
    _VT.UINT64.value: ("Q", 8),
    _VT.INT64.value: ("q", 8),
    _VT.FLOAT64.value: ("d", 8),
}
_STRING, _ARRAY = _VT.STRING.value, _VT.ARRAY.value
# gguf's key templates ("{arch}.block_count"): the names planner reads, spelled by gguf
K = constants().Keys
# array.array type codes with the same item size as the struct codes above (bool read as bytes).
_ARRAY_CODES = {
    "B": "B",
    "b": "b",
    "H": "H",
    "h": "h",
    "I": "I",
    "i": "i",
    "f": "f",
    "?": "B",
    "d": "d",
    "Q": "Q",
    "q": "q",
}


class GgufArray:
    """A long metadata array kept as the file's bytes: its length costs nothing, its items decode on demand.

    Compares equal to the list of its items (and to another GgufArray with the same bytes), so callers and tests
    that compare with gguf.GGUFReader's `contents()` see the same values.
    """

    def __init__(self, item_type: int, count: int, raw: bytes, fmt: str) -> None:
        self.item_type = item_type
        self.count = count
        self._raw = raw  # scalars: count packed items; strings: count (u64 length, bytes) records
        self._fmt = fmt

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Any:
        return iter(self.tolist())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, GgufArray):
            return (self.item_type, self.count, self._fmt, self._raw) == (
                other.item_type,
                other.count,
                other._fmt,
                other._raw,
            )
        if isinstance(other, list):
            return len(other) == self.count and self.tolist() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking like the list it stands for

    def __repr__(self) -> str:
        return f"<GGUF array of {self.count} items of type {self.item_type}>"

    def tolist(self) -> list[Any]:
        if self.item_type == _STRING:
            return _decode_strings(self._raw, self.count, self._fmt)
        code, _ = _SCALARS[self.item_type]
        return _unpack_scalars(self._raw, code, self.count, self._fmt)


def _decode_strings(raw: bytes, count: int, fmt: str) -> list[str]:
    unpack_length = struct.Struct(fmt + "Q").unpack_from
    out, p = [], 0
    for _ in range(count):
        (length,) = unpack_length(raw, p)
        out.append(raw[p + 8 : p + 8 + length].decode("utf-8", errors="replace"))
        p += 8 + length
    return out


def _unpack_scalars(raw: bytes, code: str, count: int, fmt: str) -> list[Any]:
    values = array.array(_ARRAY_CODES[code])
    if values.itemsize != struct.calcsize(code):  # platforms where C long differs: fall back to struct
        return list(struct.unpack(f"{fmt}{count}{code}", raw))
    values.frombytes(raw)
    if (fmt == ">") != (sys.byteorder == "big"):
        values.byteswap()
    return [bool(v) for v in values] if code == "?" else values.tolist()


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


@dataclass
class GgufHeader:
    version: int
    metadata: dict[str, Any]
    tensors: list[TensorInfo]
    data_offset: int
    alignment: int = DEFAULT_ALIGNMENT
    bytes_read: int = 0  # bytes pulled from the stream to parse this header
    file_size: int | None = None
    name: str = ""
    value_types: dict[str, int] = field(default_factory=dict)  # key -> GGUFValueType id

    @property
    def data_end(self) -> int:
        """Where the last tensor's data ends (absolute): the least a complete file must hold."""
        return max((t.offset + t.n_bytes for t in self.tensors), default=self.data_offset)


def human_bytes(n: int) -> str:
    """Decimal units, one decimal: how download tools and the Hub show file sizes."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


class _Source:
    """Buffered, counting reader: every length is checked against what is left before it is read."""

    def __init__(self, stream: Readable, name: str, limit: int, limit_is_file: bool) -> None:
        self._stream = stream
        self._limit_is_file = limit_is_file
        self.where = "left in the file (truncated header?)" if limit_is_file else "left in the header budget"
        self.name = name
        self._limit = limit  # the most header bytes there can be (file size or budget)
        self._buf = b""
        self._pos_in_buf = 0
        self.pos = 0  # absolute offset of the next unread byte
        self.bytes_read = 0
        self.fmt = "<"
        self.strings_left = MAX_ARRAY_STRINGS  # per header: bounds the time spent walking string arrays
        self.nested_left = MAX_NESTED_ARRAYS

    def spend(self, what: str, n: int, key: str) -> None:
        """Charge n array items to this header's budget of `what` ("strings" or "nested"): refuse before walking."""
        left = self.strings_left if what == "strings" else self.nested_left
        if n > left:
            limit = MAX_ARRAY_STRINGS if what == "strings" else MAX_NESTED_ARRAYS
            raise BadInput(
                f"{self.name}: key {key!r} brings the header's array {what} past {limit}, more than any real model"
            )
        if what == "strings":
            self.strings_left -= n
        else:
            self.nested_left -= n

    @property
    def remaining(self) -> int:
        return self._limit - self.pos

    def take(self, n: int) -> bytes:
        if n > self.remaining:
            if not self._limit_is_file:
                raise BadInput(f"{self.name}: the GGUF header is larger than {human_bytes(self._limit)}")
            raise BadInput(f"{self.name}: truncated header (needs {n} more bytes at offset {self.pos})")
        have = len(self._buf) - self._pos_in_buf
        if n <= have:
            out = self._buf[self._pos_in_buf : self._pos_in_buf + n]
            self._pos_in_buf += n
        else:
            parts = [self._buf[self._pos_in_buf :]]
            need = n - have
            while need > 0:
                chunk = self._pull(max(need, _READ_CHUNK))
                if not chunk:
                    raise BadInput(f"{self.name}: truncated header (file ends at offset {self.pos + n - need})")
                if len(chunk) >= need:
                    parts.append(chunk[:need])
                    self._buf, self._pos_in_buf = chunk, need
                    need = 0
                else:
                    parts.append(chunk)
                    need -= len(chunk)
                    self._buf, self._pos_in_buf = b"", 0
            out = b"".join(parts)
        self.pos += n
        return out

    def _pull(self, n: int) -> bytes:
        try:
            chunk = self._stream.read(n)
        except OSError as exc:
            raise BadInput(f"{self.name}: could not read the header: {exc}") from None
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise BadInput(f"{self.name}: the stream returned {type(chunk).__name__}, not bytes")
        self.bytes_read += len(chunk)
        return bytes(chunk)

    def scalar(self, code: str, size: int) -> Any:
        return struct.unpack(self.fmt + code, self.take(size))[0]

    def u32(self) -> int:
        return int(self.scalar("I", 4))

    def u64(self) -> int:
        return int(self.scalar("Q", 8))

    def string(self, what: str) -> str:
        n = self.u64()
        self._check_string_length(n, what)
        # Some vocabularies hold byte sequences that are not valid UTF-8; keep them readable.
        return self.take(n).decode("utf-8", errors="replace")

    def raw_string(self, what: str) -> bytes:
        """One string as the file holds it: its 8-byte length, then its bytes."""
        prefix = self.take(8)
        n = struct.unpack(self.fmt + "Q", prefix)[0]
        self._check_string_length(n, what)
        return prefix + self.take(n)

    def raw_strings(self, n: int, what: str) -> bytes:
        """n strings as the file holds them, without decoding: a vocabulary is measured, never read."""
        parts: list[bytes] = []
        unpack_length = struct.Struct(self.fmt + "Q").unpack_from
        done = 0
        while done < n:
            buf, p, budget = self._buf, self._pos_in_buf, self.remaining
            size = len(buf)
            start_p = p
            while done < n and size - p >= 8:
                (length,) = unpack_length(buf, p)
                end = p + 8 + length
                if length > MAX_STRING_BYTES or end > size or end - start_p > budget:
                    break
                p = end
                done += 1
            if p > start_p:
                parts.append(buf[start_p:p])
            self._pos_in_buf = p
            self.pos += p - start_p
            if done < n:  # the next string straddles the buffer's end (or is bad): the careful path
                parts.append(self.raw_string(what))
                done += 1
        return b"".join(parts)

    def _check_string_length(self, n: int, what: str) -> None:
        if n > MAX_STRING_BYTES or n > self.remaining:
            if n > MAX_STRING_BYTES:
                raise BadInput(
                    f"{self.name}: {what} claims a string of {n} bytes at offset {self.pos - 8}, "
                    f"more than any real header holds ({MAX_STRING_BYTES})"
                )
            raise BadInput(
                f"{self.name}: {what} claims a string of {n} bytes at offset {self.pos - 8}, "
                f"more than the {self.remaining} bytes {self.where}"
            )

    def strings(self, n: int, what: str) -> list[str]:
        """n strings; the common case (the whole string already buffered) skips `take` (vocabularies)."""
        out: list[str] = []
        append = out.append
        unpack_length = struct.Struct(self.fmt + "Q").unpack_from
        done = 0
        while done < n:
            buf, p, budget = self._buf, self._pos_in_buf, self.remaining
            size = len(buf)
            start_p = p
            while done < n and size - p >= 8:
                (length,) = unpack_length(buf, p)
                end = p + 8 + length
                if length > MAX_STRING_BYTES or end > size or end - start_p > budget:
                    break
                append(buf[p + 8 : end].decode("utf-8", errors="replace"))
                p = end
                done += 1
            self._pos_in_buf = p
            self.pos += p - start_p
            if done < n:  # the next string straddles the buffer's end (or is bad): the careful path
                append(self.string(what))
                done += 1
        return out


def read_header(
    stream: Readable | BinaryIO,
    *,
    file_size: int | None = None,
    name: str = "",
    max_header_bytes: int = MAX_HEADER_BYTES,
) -> GgufHeader:
    """Parse a GGUF header from the start of `stream` (positioned at offset 0); reads no tensor data.

    With a known file size (given, or `stream.size`, or by seeking), a file too short for its tensors is
    reported as truncated.
    """
    name = name or str(getattr(stream, "name", "") or getattr(stream, "path", "") or "model.gguf")
    name = os.path.basename(name) or name
    if file_size is None:
        file_size = _stream_size(stream)
    limit = max_header_bytes if file_size is None else min(file_size, max_header_bytes)
    src = _Source(stream, name, limit, limit_is_file=file_size is not None and file_size <= max_header_bytes)

    magic = src.take(4) if src.remaining >= 4 else (_short_read(src) or b"")
    if magic != GGUF_MAGIC:
        if not magic:
            raise BadInput(f"{name} is empty, not a GGUF file")
        raise BadInput(f"{name} is not a GGUF file (magic {magic!r})")
    raw_version = src.take(4)
    version = struct.unpack("<I", raw_version)[0]
    if version not in SUPPORTED_VERSIONS and struct.unpack(">I", raw_version)[0] in SUPPORTED_VERSIONS:
        src.fmt = ">"  # big-endian GGUF (s390x conversions): same layout, swapped byte order
        version = struct.unpack(">I", raw_version)[0]
    if version not in SUPPORTED_VERSIONS:
        hint = " (GGUF v1 from 2023: re-download or re-convert the model)" if version == 1 else ""
        raise BadInput(f"{name}: unsupported GGUF version {version}{hint}")

    n_tensors = src.u64()
    n_kv = src.u64()
    _check_count(name, "tensors", n_tensors, MAX_TENSORS, src.remaining, _MIN_TENSOR_INFO_BYTES, file_size)
    _check_count(name, "metadata keys", n_kv, MAX_KV, src.remaining, _MIN_KV_BYTES, file_size)

    metadata: dict[str, Any] = {}
    value_types: dict[str, int] = {}
    for _ in range(n_kv):
        key = src.string("a metadata key")
        vtype = src.u32()
        if key in metadata:
            raise BadInput(f"{name}: duplicate metadata key {key!r}")
        metadata[key] = _read_value(src, vtype, key, depth=0)
        value_types[key] = vtype

    alignment = _alignment(name, metadata, value_types)
    infos = [_read_tensor_info(src) for _ in range(n_tensors)]
    data_offset = -(-src.pos // alignment) * alignment

    tensors: list[TensorInfo] = []
    seen: set[str] = set()
    for tname, dims, type_id, rel_offset in infos:
        if tname in seen:
            raise BadInput(f"{name}: duplicate tensor {tname!r}")
        seen.add(tname)
        tensors.append(_tensor(name, tname, dims, type_id, rel_offset, data_offset, alignment))

    header = GgufHeader(
        version=version,
        metadata=metadata,
        tensors=tensors,
        data_offset=data_offset,
        alignment=alignment,
        bytes_read=src.bytes_read,
        file_size=file_size,
        name=name,
        value_types=value_types,
    )
    check_complete(header)
    return header


def read_local(path: str | Path, *, max_header_bytes: int = MAX_HEADER_BYTES) -> GgufHeader:
    """Read a local GGUF's header and check the file holds all the tensor data it declares."""
    path = Path(path)
    with open_regular_file(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        return read_header(fh, file_size=size, name=path.name, max_header_bytes=max_header_bytes)


def open_regular_file(path: Path) -> BinaryIO:
    """Open `path` for reading only if it is a regular file (after symlinks); anything else is one BadInput line.

    A FIFO named x.gguf blocks open() forever and a device never ends, so the check comes before the open, and
    the open is non-blocking so a file swapped for a FIFO in between cannot hang it either; fstat then confirms
    what was opened."""
    try:
        _require_regular(path, os.stat(path).st_mode)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise BadInput(f"{path} does not exist") from None
    except IsADirectoryError:
        raise BadInput(f"{path} is a folder, not a GGUF file") from None
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        _require_regular(path, os.fstat(fd).st_mode)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # a regular file ignores the flag; reads then behave as usual
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def regular_file_size(path: Path) -> int:
    """The size of a model file, refusing anything but a regular file (a FIFO or a device named *.gguf would
    block or never end when read) without opening it."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise BadInput(f"{path} does not exist") from None
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from None
    _require_regular(path, info.st_mode)
    return info.st_size


def _require_regular(path: Path, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise BadInput(f"{path} is a folder, not a GGUF file")
    raise BadInput(f"{path} is a {_file_kind(mode)}, not a regular file: planner reads models from regular files")


def _file_kind(mode: int) -> str:
    kinds: tuple[tuple[Callable[[int], bool], str], ...] = (
        (stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    )  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "special file")


def check_complete(header: GgufHeader) -> None:
    """A file shorter than its last tensor's end is a partial download: say so plainly."""
    if header.file_size is None:
        return
    end = header.data_end
    if header.file_size < end:
        raise BadInput(
            f"{header.name} is truncated: {human_bytes(header.file_size)} of {human_bytes(end)} (interrupted download?)"
        )


# --- pieces ----------------------------------------------------------------------------------------


def _short_read(src: _Source) -> bytes:
    return src.take(src.remaining) if src.remaining > 0 else b""


def _stream_size(stream: Any) -> int | None:
    """The stream's total size when it can tell cheaply (fsspec files have .size; local files can seek)."""
    size = getattr(stream, "size", None)
    if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
        return size
    try:
        if stream.seekable():
            here = stream.tell()
            end = stream.seek(0, os.SEEK_END)
            stream.seek(here)
            return int(end)
    except (AttributeError, OSError, ValueError):
        pass
    return None


def _check_count(
    name: str, what: str, n: int, hard_max: int, remaining: int, min_each: int, file_size: int | None
) -> None:
    if n > hard_max:
        raise BadInput(f"{name}: header claims {n} {what}, more than any real model ({hard_max})")
    if n * min_each > remaining:
        room = f"a {human_bytes(file_size)} file" if file_size is not None else "the header budget"
        raise BadInput(f"{name}: header claims {n} {what}, more than {room} can hold")


def _read_value(src: _Source, vtype: int, key: str, depth: int) -> Any:
    if vtype in _SCALARS:
        code, size = _SCALARS[vtype]
        return src.scalar(code, size)
    if vtype == _STRING:
        return src.string(f"key {key!r}")
    if vtype == _ARRAY:
        if depth >= MAX_ARRAY_DEPTH:
            raise BadInput(f"{src.name}: key {key!r} nests arrays deeper than {MAX_ARRAY_DEPTH}")
        item_type = src.u32()
        n = src.u64()
        return _read_array(src, item_type, n, key, depth)
    raise BadInput(f"{src.name}: key {key!r} has unknown value type {vtype}")


def _read_array(src: _Source, item_type: int, n: int, key: str, depth: int) -> list[Any] | GgufArray:
    if item_type in _SCALARS:
        code, size = _SCALARS[item_type]
        min_each = size
    elif item_type == _STRING:
        min_each = 8
    elif item_type == _ARRAY:
        min_each = 12
    else:
        raise BadInput(f"{src.name}: key {key!r} is an array of unknown value type {item_type}")
    if n * min_each > src.remaining:
        raise BadInput(f"{src.name}: key {key!r}: array of {n} items exceeds the {src.remaining} bytes {src.where}")
    if item_type in _SCALARS:
        raw = src.take(n * size)
        if n > KEEP_ARRAY_ITEMS:
            return GgufArray(item_type, n, raw, src.fmt)
        return _unpack_scalars(raw, code, n, src.fmt)
    if item_type == _STRING:
        src.spend("strings", n, key)
        if n > KEEP_ARRAY_ITEMS:
            return GgufArray(item_type, n, src.raw_strings(n, f"key {key!r}"), src.fmt)
        return src.strings(n, f"key {key!r}")
    src.spend("nested", n, key)
    return [_read_value(src, _ARRAY, key, depth + 1) for _ in range(n)]


def _alignment(name: str, metadata: dict[str, Any], value_types: dict[str, int]) -> int:
    if K.General.ALIGNMENT not in metadata:
        return DEFAULT_ALIGNMENT
    value = metadata[K.General.ALIGNMENT]
    if value_types[K.General.ALIGNMENT] != _VT.UINT32.value or value <= 0 or value & (value - 1):
        raise BadInput(f"{name}: general.alignment must be a power-of-two uint32, got {value!r}")
    return int(value)


def _read_tensor_info(src: _Source) -> tuple[str, list[int], int, int]:
    tname = src.string("a tensor name")
    n_dims = src.u32()
    if n_dims > GGML_MAX_DIMS:
        raise BadInput(f"{src.name}: tensor {tname!r} has {n_dims} dimensions (GGML allows at most 4)")
    dims = [src.u64() for _ in range(n_dims)]
    type_id = src.scalar("i", 4)
    offset = src.u64()
    return tname, dims, type_id, offset


def _tensor(
    name: str, tname: str, dims: list[int], type_id: int, rel_offset: int, data_offset: int, alignment: int
) -> TensorInfo:
    from planner.types.ggml import constants

    GGML_QUANT_SIZES, GGMLQuantizationType = constants().GGML_QUANT_SIZES, constants().GGMLQuantizationType  # noqa: N806

    try:
        qtype = GGMLQuantizationType(type_id)
        block_size, type_size = GGML_QUANT_SIZES[qtype]
    except (ValueError, KeyError):
        if type_id in _REMOVED_TYPES:
            old = _REMOVED_TYPES[type_id]
            base = old.rsplit("_", 2)[0]
            raise BadInput(
                f"{name}: tensor {tname!r} uses {old}, which llama.cpp no longer loads "
                f"(use a {base} file: llama.cpp repacks it at load time)"
            ) from None
        raise BadInput(f"{name}: tensor {tname!r} has unknown ggml type {type_id}") from None
    n_elements = 1
    for d in dims:
        n_elements *= d
        if n_elements > MAX_ELEMENTS:
            raise BadInput(f"{name}: tensor {tname!r} has an impossible shape {dims}")
    if dims and dims[0] % block_size:
        raise BadInput(
            f"{name}: tensor {tname!r} row of {dims[0]} is not a multiple of the {qtype.name} block ({block_size})"
        )
    if rel_offset % alignment:
        raise BadInput(f"{name}: tensor {tname!r} data offset {rel_offset} is not aligned to {alignment}")
    return TensorInfo(
        name=tname,
        ggml_type=qtype.name,
        shape=dims,
        n_bytes=n_elements // block_size * type_size,
        offset=data_offset + rel_offset,
    )


# --- ModelFacts ------------------------------------------------------------------------------------

# llama.cpp's own ceiling (planner.types.ggml.LLAMA_MAX_LAYERS): per-layer hyperparameters live in fixed arrays
# of this size, and the loader refuses a block_count above it ("n > N_MAX"). Every per-layer loop planner runs is
# bounded by it, whatever a header claims.
_BLOCK_TENSOR = re.compile(r"^blk\.(\d+)\.")


@dataclass(frozen=True)
class _SwaRule:
    """How llama.cpp marks an architecture's SWA layers (src/models/<arch>.cpp: load_swa_pattern)."""

    period: int
    dense_first: bool = False  # True: layer il is global when il % period == 0; else the last of each period is
    default_window: int | None = None  # n_swa when the GGUF has no attention.sliding_window
    needs_window_key: bool = False  # SWA only when the GGUF sets a positive sliding_window
    min_layers: int | None = None  # exaone4: only the 64-layer (32B) model uses SWA


# From the llama.cpp source vendored in llama-cpp-python 0.3.36 (src/models/*.cpp, llama-hparams.cpp:8-22).
_SWA_RULES: dict[str, _SwaRule] = {
    "gemma2": _SwaRule(2, default_window=4096),
    "gemma3": _SwaRule(6, needs_window_key=True),
    "gemma3n": _SwaRule(5),
    "gemma-embedding": _SwaRule(6),
    "gpt-oss": _SwaRule(2),
    "cohere2": _SwaRule(4),
    "cohere2moe": _SwaRule(4, dense_first=True),
    "exaone4": _SwaRule(4, default_window=4096, min_layers=64),
    "exaone-moe": _SwaRule(4, default_window=128),
    "olmo2": _SwaRule(4, needs_window_key=True),
    "plamo3": _SwaRule(8, needs_window_key=True),
    "llama4": _SwaRule(4, default_window=8192),  # chunked attention, 3 chunked : 1 full; window 0 turns it off
    "afmoe": _SwaRule(4, needs_window_key=True),
    "mellum": _SwaRule(4, needs_window_key=True),
    "smallthinker": _SwaRule(4, dense_first=True, needs_window_key=True),
    "modern-bert": _SwaRule(3, dense_first=True, needs_window_key=True),
    "muse-glimmer": _SwaRule(4),
    "laguna": _SwaRule(4, dense_first=True, needs_window_key=True),
}


def facts_from_headers(
    headers: list[GgufHeader], *, source: str, files: list[str], repo: str | None = None
) -> ModelFacts:
    """Build ModelFacts from the header(s) of one model: a single file or every shard of a split set."""
    if not headers:
        raise BadInput(f"{source}: no GGUF header to read")
    if len(files) != len(headers):
        raise BadInput(f"{source}: {len(headers)} headers but {len(files)} file names")
    pairs = _order_shards(headers, files, source)
    headers = [h for h, _ in pairs]
    files = [f for _, f in pairs]
    md = headers[0].metadata  # llama.cpp reads every key from the first shard
    label = files[0] or source

    arch = md.get(K.General.ARCHITECTURE)
    if not isinstance(arch, str) or not arch:
        raise BadInput(f"{label} has no general.architecture (not a llama.cpp model file?)")

    def name(template: str) -> str:  # gguf's key templates: Keys.LLM.BLOCK_COUNT is "{arch}.block_count"
        return str(template.format(arch=arch))

    def key(template: str) -> Any:
        return md.get(name(template))

    tensors: list[TensorInfo] = []
    for index, header in enumerate(headers):
        tensors.extend(t.model_copy(update={"file_index": index}) for t in header.tensors)
    by_name = {t.name: t for t in tensors}

    n_layer = _n_layer(key(K.LLM.BLOCK_COUNT), name(K.LLM.BLOCK_COUNT), label, tensors)
    n_embd = _required_int(key(K.LLM.EMBEDDING_LENGTH), name(K.LLM.EMBEDDING_LENGTH), label)

    def per_layer(template: str) -> int | list[int] | None:
        return _int_or_layers(key(template), name(template), label, n_layer)

    n_head_raw = per_layer(K.Attention.HEAD_COUNT)
    n_head = max(n_head_raw) if isinstance(n_head_raw, list) else (n_head_raw or 0)
    n_head_kv = per_layer(K.Attention.HEAD_COUNT_KV)
    if n_head_kv is None:
        n_head_kv = n_head_raw if n_head_raw is not None else 0
    default_head_dim = n_embd // n_head if n_head else 0
    head_dim_k = _optional_int(key(K.Attention.KEY_LENGTH), name(K.Attention.KEY_LENGTH), label)
    head_dim_v = _optional_int(key(K.Attention.VALUE_LENGTH), name(K.Attention.VALUE_LENGTH), label)
    n_ff = per_layer(K.LLM.FEED_FORWARD_LENGTH)
    expert_ff = per_layer(K.LLM.EXPERT_FEED_FORWARD_LENGTH)
    context_length = _required_int(key(K.LLM.CONTEXT_LENGTH), name(K.LLM.CONTEXT_LENGTH), label)

    window = _optional_int(key(K.Attention.SLIDING_WINDOW), name(K.Attention.SLIDING_WINDOW), label)
    pattern = key(K.Attention.SLIDING_WINDOW_PATTERN)
    if isinstance(pattern, list | GgufArray) and len(pattern) != n_layer:
        raise BadInput(
            f"{label}: {arch}.attention.sliding_window_pattern has {len(pattern)} entries for {n_layer} layers"
        )
    swa_layers = _swa_layers(arch, n_layer, window, pattern)
    if any(swa_layers):
        rule = _SWA_RULES.get(arch)
        window = window if window else (rule.default_window if rule else None)
    else:
        swa_layers, window = [], None

    mla = key(K.Attention.KEY_LENGTH_MLA) is not None
    kv_lora_rank = _optional_int(key(K.Attention.KV_LORA_RANK), name(K.Attention.KV_LORA_RANK), label)

    n_params = 0
    for t in tensors:
        count = 1
        for d in t.shape:
            count *= d
        n_params += count

    return ModelFacts(
        source=source,
        repo=repo,
        file=files[0],
        files=files,
        quant=_quant_name(md.get(K.General.FILE_TYPE), tensors),
        arch=arch,
        name=md.get(K.General.NAME) if isinstance(md.get(K.General.NAME), str) else None,
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim_k=head_dim_k if head_dim_k is not None else default_head_dim,
        head_dim_v=head_dim_v if head_dim_v is not None else default_head_dim,
        n_ff=n_ff if n_ff is not None else 0,
        n_vocab=_n_vocab(md, arch, by_name.get("token_embd.weight"), label),
        context_length=context_length,
        sliding_window=window,
        swa_layers=swa_layers,
        n_expert=_optional_int(key(K.LLM.EXPERT_COUNT), name(K.LLM.EXPERT_COUNT), label) or 0,
        n_expert_used=_optional_int(key(K.LLM.EXPERT_USED_COUNT), name(K.LLM.EXPERT_USED_COUNT), label) or 0,
        expert_ff=(max(expert_ff) if isinstance(expert_ff, list) else expert_ff) or 0,
        kv_lora_rank=kv_lora_rank if mla and kv_lora_rank else None,
        n_params=n_params,
        size_bytes=sum(t.n_bytes for t in tensors),
        tensors=tensors,
        header_bytes_read=sum(h.bytes_read for h in headers),
        origin="gguf",
    ).derive_layout()


def require_tensors(headers: list[GgufHeader], label: str) -> None:
    """A model file must hold weights: a vocabulary-only GGUF (llama.cpp ships some) parses, but runs nothing.

    Checked over every shard together: the first part of a split set may hold metadata only."""
    if not any(h.tensors for h in headers):
        raise BadInput(f"{label} holds no tensors (a vocabulary-only file?): there is no model to run")


def file_type_name(file_type: int) -> str | None:
    """llama.cpp's name for a general.file_type value (LlamaFileType.MOSTLY_Q4_K_M -> "Q4_K_M")."""
    from planner.types.ggml import constants

    LlamaFileType = constants().LlamaFileType  # noqa: N806

    try:
        member = LlamaFileType(file_type)
    except ValueError:
        return None
    if member is LlamaFileType.GUESSED:
        return None
    return str(member.name).removeprefix("MOSTLY_").removeprefix("ALL_")


def _quant_name(file_type: Any, tensors: list[TensorInfo]) -> str:
    if isinstance(file_type, int) and not isinstance(file_type, bool):
        name = file_type_name(file_type)
        if name:
            return name
    # No (or an unknown) file type: name the type holding most of the 2-D weights' bytes.
    weight_bytes: dict[str, int] = {}
    for t in tensors:
        if len(t.shape) >= 2:
            weight_bytes[t.ggml_type] = weight_bytes.get(t.ggml_type, 0) + t.n_bytes
    return max(weight_bytes, key=weight_bytes.__getitem__) if weight_bytes else "unknown"


def _order_shards(headers: list[GgufHeader], files: list[str], source: str) -> list[tuple[GgufHeader, str]]:
    pairs = list(zip(headers, files, strict=True))
    count = headers[0].metadata.get("split.count")
    if count is None:
        if len(headers) > 1:
            raise BadInput(f"{source}: {len(headers)} files given but {files[0]} is not part of a split model")
        return pairs
    if not isinstance(count, int) or count != len(headers):
        raise BadInput(f"{source}: split model has {count} parts, got {len(headers)}")
    numbers = [h.metadata.get("split.no") for h in headers]
    if sorted(n for n in numbers if isinstance(n, int)) != list(range(len(headers))):
        raise BadInput(f"{source}: split parts are numbered {numbers}, expected 0..{len(headers) - 1}")
    pairs.sort(key=lambda pair: pair[0].metadata["split.no"])
    declared = pairs[0][0].metadata.get("split.tensors.count")
    found = sum(len(h.tensors) for h in headers)
    if isinstance(declared, int) and declared != found:
        raise BadInput(f"{source}: split model declares {declared} tensors but its parts hold {found}")
    return pairs


def _swa_layers(arch: str, n_layer: int, window: int | None, pattern: Any) -> list[bool]:
    # An explicit per-layer array wins (gemma4 and newer conversions); a scalar overrides the period.
    if isinstance(pattern, list) and len(pattern) == n_layer:
        return [bool(v) for v in pattern]
    rule = _SWA_RULES.get(arch)
    if rule is None or (rule.needs_window_key and not window) or (arch == "llama4" and window == 0):
        return []
    if rule.min_layers is not None and n_layer != rule.min_layers:
        return []
    period = pattern if isinstance(pattern, int) and not isinstance(pattern, bool) else rule.period
    if period == 0:  # llama.cpp: a zero period means every layer is SWA
        return [True] * n_layer
    if rule.dense_first:
        return [il % period != 0 for il in range(n_layer)]
    return [il % period < period - 1 for il in range(n_layer)]


def _n_vocab(md: dict[str, Any], arch: str, token_embd: TensorInfo | None, label: str) -> int:
    tokens = md.get(K.Tokenizer.LIST)
    if isinstance(tokens, list | GgufArray) and len(tokens):
        return len(tokens)
    size = md.get(K.LLM.VOCAB_SIZE.format(arch=arch))
    if isinstance(size, int) and size > 0:
        return size
    if token_embd is not None and len(token_embd.shape) == 2:
        return token_embd.shape[1]
    raise BadInput(f"{label} has no vocabulary (no tokenizer.ggml.tokens, {arch}.vocab_size or token_embd)")


def _n_layer(value: Any, key: str, label: str, tensors: list[TensorInfo]) -> int:
    """block_count, checked against what the file holds: every block has tensors named blk.N.*, so a header
    cannot claim more blocks than its tensor table has (a 1.9 KB file claiming 10^6 blocks took 45 s to plan).
    Without a tensor table (facts built from metadata alone) llama.cpp's ceiling still bounds it."""
    n_layer = _required_int(value, key, label)
    if n_layer == 0:
        raise BadInput(f"{label}: {key} is 0: a model has at least one block")
    in_table = len({m.group(1) for t in tensors if (m := _BLOCK_TENSOR.match(t.name))})
    if tensors and n_layer > in_table:
        blocks = f"{in_table} block" + ("" if in_table == 1 else "s")
        raise BadInput(f"{label}: {key} is {n_layer} but the tensor table holds tensors for only {blocks}")
    if n_layer > LLAMA_MAX_LAYERS:
        raise BadInput(f"{label}: {key} is {n_layer}, more than llama.cpp loads ({LLAMA_MAX_LAYERS})")
    return n_layer


def _required_int(value: Any, key: str, label: str) -> int:
    result = _optional_int(value, key, label)
    if result is None:
        raise BadInput(f"{label} has no {key}")
    return result


def _optional_int(value: Any, key: str, label: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadInput(f"{label}: {key} should be a non-negative integer, got {_short(value)}")
    return value


def _int_or_layers(value: Any, key: str, label: str, n_layer: int) -> int | list[int] | None:
    """A per-layer key: a scalar, or an array with one entry per layer (collapsed when all equal).

    An array of another length is refused as llama.cpp refuses it ("wrong array length"): the estimators index
    it by layer."""
    if isinstance(value, GgufArray):  # longer than any layer count: never decoded
        raise BadInput(f"{label}: {key} has {len(value)} entries for {n_layer} layers")
    if isinstance(value, list):
        if not value or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
            raise BadInput(f"{label}: {key} should be integers, got {_short(value)}")
        if len(value) != n_layer:
            raise BadInput(f"{label}: {key} has {len(value)} entries for {n_layer} layers")
        return value[0] if len(set(value)) == 1 else list(value)
    return _optional_int(value, key, label)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
