"""The bytes that cross between the grader and the child that runs student code.

A message is a JSON document whose arrays travel separately as ``.npy`` bytes: every ndarray in the
document is replaced by ``{"__array__": k}`` and sent as the k-th part. Arrays are written and read
with ``allow_pickle=False``, so nothing the child sends can make the parent run code.

Framing: an 8-byte big-endian length, then the body; the body is a 4-byte part count followed by
parts, each an 8-byte length and its bytes. Part 0 is the JSON document.

This module imports only the standard library and numpy: the child loads it from a copy beside its
driver, without the rest of the grader.
"""

from __future__ import annotations

import io
import json
import re
import struct

import numpy as np

LENGTH = struct.Struct(">Q")
COUNT = struct.Struct(">I")
ARRAY_KEY = "__array__"


class WireError(ValueError):
    """Bytes that are not a well-formed message."""


def _flatten(value, arrays):
    """The JSON-able form of ``value``, with its arrays moved into ``arrays``."""
    if isinstance(value, np.ndarray):
        arrays.append(value)
        return {ARRAY_KEY: len(arrays) - 1}
    if isinstance(value, dict):
        return {str(key): _flatten(item, arrays) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_flatten(item, arrays) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _restore(value, arrays):
    if isinstance(value, dict):
        if set(value) == {ARRAY_KEY}:
            index = value[ARRAY_KEY]
            if not isinstance(index, int) or not 0 <= index < len(arrays):
                raise WireError(f"array reference {index!r} out of range")
            return arrays[index]
        return {key: _restore(item, arrays) for key, item in value.items()}
    if isinstance(value, list):
        return [_restore(item, arrays) for item in value]
    return value


def _npy_bytes(array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array)
    dtype = array.dtype
    if dtype.kind in _PLAIN_KINDS and dtype.isbuiltin == 1 and dtype.metadata is None:
        # What np.save writes for such an array (format 1.0), without its repr-built header.
        shape = array.shape
        if not shape:
            text = "()"
        elif len(shape) == 1:
            text = f"({shape[0]},)"
        else:
            text = "(" + ", ".join(map(str, shape)) + ")"
        header = f"{{'descr': '{dtype.str}', 'fortran_order': False, 'shape': {text}, }}"
        if shape:  # np.save's spare room for the first axis to grow in place
            header += " " * (_GROWTH_AXIS_DIGITS - len(str(shape[0])))
        size = len(header) + 1
        size += _NPY_ALIGN - (len(_NPY_MAGIC) + 2 + size) % _NPY_ALIGN
        if size <= 0xFFFF:
            return b"".join((_NPY_MAGIC, size.to_bytes(2, "little"), header.encode("latin1"),
                             b" " * (size - len(header) - 1), b"\n", array.tobytes()))
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


# The exact header np.save writes (format 1.0) for a plain numeric array in C order. np.load parses
# headers with ast.literal_eval, which dominated decoding; this one is matched by a strict regular
# expression instead, and anything else (other versions, Fortran order, any other dtype or spacing)
# still goes through np.load, so what is accepted is never more than np.load would accept.
_NPY_MAGIC = b"\x93NUMPY\x01\x00"
_NPY_ALIGN = 64  # np.save pads magic, length and header to a multiple of this
_GROWTH_AXIS_DIGITS = 21  # np.save leaves room for the growth axis's length to reach this many digits
_PLAIN_KINDS = frozenset("biufc")
_PLAIN_HEADER = re.compile(
    rb"\{'descr': '([<>|][biufc][0-9]{1,2})', 'fortran_order': False, 'shape': \((|[0-9]+,|[0-9]+(?:, [0-9]+)+)\), \} *\n")


def _load_array(part: bytes) -> np.ndarray:
    if part[:8] == _NPY_MAGIC and len(part) >= 10:
        end = 10 + int.from_bytes(part[8:10], "little")
        found = _PLAIN_HEADER.fullmatch(part, 10, end)
        try:
            dtype = np.dtype(found[1].decode("ascii")) if found else None
        except TypeError:  # a size that kind does not have, e.g. 'f3': np.load's to refuse
            dtype = None
        if dtype is not None:
            shape = tuple(int(size) for size in found[2].split(b",") if size)
            count = 1
            for size in shape:
                count *= size
            if len(part) - end == count * dtype.itemsize:  # else np.load decides (it may refuse)
                # A writable copy, as np.load returns (never a view of the message).
                return np.frombuffer(part, dtype, count, end).reshape(shape).copy()
    return np.load(io.BytesIO(part), allow_pickle=False)


def encode(message) -> bytes:
    """One framed message (length prefix included)."""
    arrays: list = []
    document = json.dumps(_flatten(message, arrays), allow_nan=True).encode("utf-8")
    parts = [document, *(_npy_bytes(array) for array in arrays)]
    body = COUNT.pack(len(parts)) + b"".join(LENGTH.pack(len(part)) + part for part in parts)
    return LENGTH.pack(len(body)) + body


def decode_body(body: bytes):
    """The message in ``body`` (a frame without its length prefix); WireError if malformed."""
    try:
        (count,) = COUNT.unpack_from(body, 0)
        offset, parts = COUNT.size, []
        for _ in range(count):
            (size,) = LENGTH.unpack_from(body, offset)
            offset += LENGTH.size
            if offset + size > len(body):
                raise WireError("a part runs past the end of the message")
            parts.append(body[offset : offset + size])
            offset += size
    except struct.error as error:
        raise WireError(f"truncated message: {error}") from None
    if not parts:
        raise WireError("empty message")
    try:
        document = json.loads(parts[0].decode("utf-8"))
        arrays = [_load_array(part) for part in parts[1:]]
    except (ValueError, UnicodeDecodeError, OSError) as error:
        raise WireError(f"unreadable message: {error}") from None
    return _restore(document, arrays)


def read_message(stream):
    """Blocking read of one message from a binary file object; None at end of file."""
    header = stream.read(LENGTH.size)
    if len(header) < LENGTH.size:
        return None
    (size,) = LENGTH.unpack(header)
    body = stream.read(size)
    if len(body) < size:
        return None
    return decode_body(body)
