"""Where a lake lives: a local folder or an S3-compatible bucket, behind one small API.

Both go through pyarrow's filesystems, so the Parquet writer, the manifest and the
garbage collector do not care which. Atomic replacement of the manifest: on a local disk
a temporary file is renamed over it (os.replace semantics); on S3 a single PUT of an
object is atomic, and the manifest object is written last (docs/lake.md, "Consistency").
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.fs as pafs

from ingest.store import config


@dataclass(frozen=True)
class LakeStore:
    """A lake's filesystem and root. `root` is a path inside `fs` (bucket/prefix for S3);
    every `rel` argument below is relative to it, with '/' separators."""

    fs: pafs.FileSystem
    root: str
    url: str
    local: bool

    def path(self, rel: str) -> str:
        """Path of `rel` inside `fs`."""
        return f"{self.root}/{rel}" if rel else self.root

    def uri(self, rel: str) -> str:
        """What another engine opens: an absolute local path or s3://bucket/key."""
        return self.path(rel) if self.local else f"s3://{self.path(rel)}"

    def read_bytes(self, rel: str) -> bytes | None:
        """Content of `rel`, None when it does not exist."""
        try:
            with self.fs.open_input_stream(self.path(rel)) as stream:
                return stream.read()
        except FileNotFoundError:
            return None
        except OSError as exc:  # S3 reports a missing key as OSError on some versions
            if "not exist" in str(exc).lower() or "nosuchkey" in str(exc).lower():
                return None
            raise

    def write_bytes_atomic(self, rel: str, data: bytes) -> None:
        """Replace `rel` with `data` so a reader sees the old or the new content, whole."""
        if self.local:
            self.fs.create_dir(os.path.dirname(self.path(rel)), recursive=True)
            temporary = f"{rel}.tmp-{uuid.uuid4().hex}"
            with self.fs.open_output_stream(self.path(temporary)) as out:
                out.write(data)
            os.replace(self.path(temporary), self.path(rel))
        else:
            with self.fs.open_output_stream(self.path(rel)) as out:
                out.write(data)

    def files(self, prefix: str = "") -> list[str]:
        """Every file under `prefix` (recursive), relative to the root, sorted."""
        selector = pafs.FileSelector(self.path(prefix), recursive=True, allow_not_found=True)
        start = len(self.root) + 1
        found = self.fs.get_file_info(selector)
        return sorted(i.path[start:] for i in found if i.type == pafs.FileType.File)

    def delete(self, rels: list[str]) -> None:
        """Delete files (missing ones are fine), and on a local disk the folders they
        leave empty (S3 has no folders)."""
        for rel in rels:
            with contextlib.suppress(FileNotFoundError):
                self.fs.delete_file(self.path(rel))
            if self.local:
                folder = Path(self.path(rel)).parent
                while folder != Path(self.root) and Path(self.root) in folder.parents:
                    try:
                        folder.rmdir()
                    except OSError:  # not empty (or gone): stop climbing
                        break
                    folder = folder.parent

    @contextlib.contextmanager
    def writer_lock(self) -> Iterator[None]:
        """One writer at a time. Local: an exclusive flock on `_lake.lock`, waited for.
        S3 has no lock: run one writer per lake (docs/lake.md)."""
        if not self.local:
            yield
            return
        Path(self.root).mkdir(parents=True, exist_ok=True)
        with open(Path(self.root) / "_lake.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def open_store(target: str | None = None, *, s3_endpoint: str | None = None) -> LakeStore:
    """The lake at `target`: a folder path, or s3://bucket/prefix (default AI_RUNS_LAKE).

    For s3:// the endpoint is `s3_endpoint`, else AI_RUNS_LAKE_S3_ENDPOINT, else AWS;
    credentials come from the standard AWS_* variables. ValueError for another scheme.
    """
    target = target or config.lake_target()
    parsed = urlparse(target)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"lake target {target!r}: s3:// needs a bucket, s3://bucket/prefix")
        endpoint = s3_endpoint or config.lake_s3_endpoint()
        options = {"region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
        if endpoint:
            scheme = urlparse(endpoint).scheme or "https"
            options |= {"endpoint_override": endpoint, "scheme": scheme}
        fs = pafs.S3FileSystem(**options)
        root = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
        return LakeStore(fs=fs, root=root, url=target, local=False)
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"lake target {target!r}: allowed are a folder path or s3://bucket/prefix")
    path = Path(parsed.path if parsed.scheme == "file" else target).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return LakeStore(fs=pafs.LocalFileSystem(), root=str(path), url=str(path), local=True)
