"""Streaming safetensors reading and writing: composing never holds more than a few tensors, and a
header is read (names, dtypes, shapes) without reading the tensors.

The format (https://github.com/huggingface/safetensors): 8-byte little-endian header length, a JSON
header ``{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}`` padded
with spaces, then the raw little-endian bytes of every tensor. Offsets are relative to the end of
the header, so the header can be written before any tensor is computed.

Reading uses plain positioned reads rather than a memory map on purpose: pages of a memory-mapped
file count towards the process's resident memory while the map is open, so reading three mapped
checkpoints would show three models of RSS even though each tensor is used once.
"""
from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch
from typing_extensions import Self

from resegzoo.errors import ResegzooError
from resegzoo.outputs.atomic import atomic_path

_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}
_NAMES = {dtype: name for name, dtype in _DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024


class SafetensorsError(ResegzooError, ValueError):
    """A file that is not a readable safetensors checkpoint."""


@dataclass(frozen=True)
class TensorInfo:
    dtype: torch.dtype
    shape: tuple[int, ...]
    begin: int = 0
    end: int = 0

    @property
    def nbytes(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n * torch.empty((), dtype=self.dtype).element_size()


def dtype_name(dtype: torch.dtype) -> str:
    try:
        return _NAMES[dtype]
    except KeyError:
        raise SafetensorsError(f"tensors of dtype {dtype} cannot be stored in safetensors by resegzoo") from None


def _open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading when it is a regular file (a link to one is fine); opened without
    blocking first, so a FIFO or a device is a SafetensorsError instead of a read that never ends."""
    import stat

    from resegzoo.errors import file_kind

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise SafetensorsError(f"{path}: is {file_kind(mode)}, not a safetensors file; give a regular file")
        return os.fdopen(os.dup(fd), "rb")
    finally:
        os.close(fd)


class SafetensorsFile:
    """Header of a safetensors file, and tensor-by-tensor reads from it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fh = _open_regular(self.path)
        try:
            self.tensors, self.metadata, self._data_start = self._read_header()
        except BaseException:
            self._fh.close()
            raise

    def _read_header(self) -> tuple[dict[str, TensorInfo], dict[str, str], int]:
        size = os.fstat(self._fh.fileno()).st_size
        raw_len = self._fh.read(8)
        if len(raw_len) != 8:
            raise SafetensorsError(f"{self.path}: too short to be a safetensors file")
        (header_len,) = struct.unpack("<Q", raw_len)
        if header_len > min(_MAX_HEADER, size - 8):
            raise SafetensorsError(f"{self.path}: not a safetensors file (bad header length {header_len})")
        try:
            header = json.loads(self._fh.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SafetensorsError(f"{self.path}: safetensors header is not valid JSON: {exc}") from exc
        if not isinstance(header, dict):
            raise SafetensorsError(f"{self.path}: safetensors header is a JSON {type(header).__name__}, not an object")
        metadata = header.pop("__metadata__", None) or {}
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise SafetensorsError(f"{self.path}: safetensors __metadata__ must map names to strings")
        data_start = 8 + header_len
        tensors = {}
        for name, entry in header.items():
            tensors[name] = self._tensor_info(name, entry, size - data_start)
        return tensors, dict(metadata), data_start

    def _tensor_info(self, name: str, entry: object, data_size: int) -> TensorInfo:
        """One header entry, checked: a known dtype, a shape of naturals, offsets inside the file."""
        def bad(why: str) -> SafetensorsError:
            return SafetensorsError(f"{self.path}: tensor {name!r} {why} (truncated or corrupt download?)")

        if not isinstance(entry, dict):
            raise bad(f"has a header entry of type {type(entry).__name__}, not an object")
        if entry.get("dtype") not in _DTYPES:
            raise SafetensorsError(f"{self.path}: tensor {name!r} has unsupported dtype {entry.get('dtype')!r}")
        shape, offsets = entry.get("shape"), entry.get("data_offsets")

        def naturals(value: object) -> bool:
            return isinstance(value, list) and all(type(v) is int and v >= 0 for v in value)

        if not naturals(shape):
            raise bad(f"has shape {shape!r}; a shape is a list of integers >= 0")
        if not naturals(offsets) or len(offsets) != 2 or offsets[0] > offsets[1]:
            raise bad(f"has data_offsets {offsets!r}; expected [begin, end] with 0 <= begin <= end")
        info = TensorInfo(_DTYPES[entry["dtype"]], tuple(shape), offsets[0], offsets[1])
        if info.end - info.begin != info.nbytes or info.end > data_size:
            raise bad("lies outside the file")
        return info

    def read(self, name: str) -> torch.Tensor:
        info = self.tensors[name]
        tensor = torch.empty(info.shape, dtype=info.dtype)
        if info.nbytes:
            buffer = tensor.reshape(-1).view(torch.uint8).numpy()
            self._fh.seek(self._data_start + info.begin)
            got = self._fh.readinto(buffer)
            if got != info.nbytes:
                raise SafetensorsError(f"{self.path}: short read for tensor {name!r}")
        return tensor

    def read_part(self, name: str, start: int, stop: int, buffer: torch.Tensor) -> torch.Tensor:
        """Elements [start, stop) of the flattened tensor, read into ``buffer`` (a uint8 scratch
        tensor reused across calls, so no fresh memory is touched per read); returns a view."""
        info = self.tensors[name]
        size = torch.empty((), dtype=info.dtype).element_size()
        nbytes = (stop - start) * size
        view = buffer[:nbytes]
        if nbytes:
            self._fh.seek(self._data_start + info.begin + start * size)
            if self._fh.readinto(view.numpy()) != nbytes:
                raise SafetensorsError(f"{self.path}: short read for tensor {name!r}")
        return view.view(info.dtype)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StreamingWriter:
    """Writes the header for a known list of tensors, then each tensor as it is produced, in order."""

    def __init__(self, fh: BinaryIO, layout: Sequence[tuple[str, torch.dtype, tuple[int, ...]]],
                 metadata: Mapping[str, str]):
        self._fh = fh
        self._expected: list[tuple[str, TensorInfo]] = []
        header: dict[str, object] = {}
        if metadata:
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
                raise TypeError("safetensors metadata must map str to str")
            header["__metadata__"] = dict(metadata)
        offset = 0
        for name, dtype, shape in layout:
            info = TensorInfo(dtype, tuple(shape))
            info = TensorInfo(dtype, tuple(shape), offset, offset + info.nbytes)
            header[name] = {"dtype": dtype_name(dtype), "shape": list(shape), "data_offsets": [info.begin, info.end]}
            self._expected.append((name, info))
            offset = info.end
        raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
        raw += b" " * (-len(raw) % 8)  # tensor data starts 8-byte aligned
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        self._next = 0
        self._partial = 0  # bytes of the current tensor written so far by write_part

    def write(self, name: str, tensor: torch.Tensor) -> None:
        """Write one whole tensor, the next one the header lists."""
        expected_name, info = self._expected[self._next]
        if name != expected_name or tensor.dtype != info.dtype or tuple(tensor.shape) != info.shape:
            raise ValueError(f"tensor {name!r} does not match the header entry {expected_name!r} written earlier")
        self.write_part(name, tensor)

    def write_part(self, name: str, part: torch.Tensor) -> None:
        """Write the next consecutive elements of tensor ``name`` (a piece of its flattened data)."""
        if self._next >= len(self._expected):
            raise ValueError(f"tensor {name!r}: every tensor in the header is already written")
        expected_name, info = self._expected[self._next]
        if name != expected_name or part.dtype != info.dtype:
            raise ValueError(f"tensor {name!r} does not match the header entry {expected_name!r} written earlier")
        data = part.detach().contiguous().reshape(-1).view(torch.uint8)
        if self._partial + data.numel() > info.nbytes:
            raise ValueError(f"tensor {name!r}: more data than its shape {list(info.shape)} holds")
        if data.numel():
            self._fh.write(data.numpy().data)
        self._partial += data.numel()
        if self._partial == info.nbytes:
            self._next += 1
            self._partial = 0

    def close(self) -> None:
        # zero-size tensors at the end have nothing to write
        while self._next < len(self._expected) and self._expected[self._next][1].nbytes == 0:
            self._next += 1
        if self._next != len(self._expected):
            raise ValueError(f"only {self._next} of {len(self._expected)} tensors were written")


def write_state_dict(path: Path, state_dict: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None) -> None:
    """Write a whole state dict (used to convert pickles once); ``path`` is replaced atomically."""
    names = sorted(state_dict)
    layout = [(n, state_dict[n].dtype, tuple(state_dict[n].shape)) for n in names]
    with atomic_path(path, durable=True) as tmp, tmp.open("wb") as fh:
        writer = StreamingWriter(fh, layout, metadata or {})
        for n in names:
            writer.write(n, state_dict[n])
        writer.close()
