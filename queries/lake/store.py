"""Where a lake lives: a local folder or an S3-compatible bucket.

The lake's tables are Delta Lake tables (docs/lake.md), written and read by `deltalake`
(delta-rs) with `uri(table)` and `storage_options`; the same two values open them in
Polars, and the S3 settings below are the ones any Delta reader needs. The pyarrow
filesystem `fs` is kept for the one job Delta does not do for us: converting a lake of the
old manifest layout (queries.lake.migrate).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.fs as pafs

from ingest.store import config


@dataclass(frozen=True)
class LakeStore:
    """A lake's root. `root` is a path inside `fs` (bucket/prefix for S3); every `rel`
    argument below is relative to it, with '/' separators."""

    fs: pafs.FileSystem
    root: str
    url: str
    local: bool
    storage_options: dict[str, str] = field(default_factory=dict)
    endpoint: str | None = None

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
        region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        options = {"region": region}
        delta_options = {"AWS_REGION": region}
        if endpoint:
            scheme = urlparse(endpoint).scheme or "https"
            options |= {"endpoint_override": endpoint, "scheme": scheme}
            delta_options |= {"AWS_ENDPOINT_URL": endpoint}
            if scheme == "http":
                delta_options["AWS_ALLOW_HTTP"] = "true"
        fs = pafs.S3FileSystem(**options)
        root = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
        return LakeStore(
            fs=fs,
            root=root,
            url=target,
            local=False,
            storage_options=delta_options,
            endpoint=endpoint,
        )
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"lake target {target!r}: allowed are a folder path or s3://bucket/prefix")
    path = Path(parsed.path if parsed.scheme == "file" else target).expanduser().resolve()
    if not path.exists():  # private: the lake holds every user's runs (docs/lake.md)
        path.mkdir(mode=0o700, parents=True)
        path.chmod(0o700)  # mkdir's mode passes through the umask
    return LakeStore(fs=pafs.LocalFileSystem(), root=str(path), url=str(path), local=True)
