"""Settings of the contents plugin: the ``[contents]`` table of the config file."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from junction.plugin import PluginSettings

__all__ = ["DEFAULT_HIDE_GLOBS", "ContentsSettings"]

DEFAULT_HIDE_GLOBS = ("__pycache__", "*.pyc", "*.pyo", ".DS_Store", "*.so", "*.dylib", "*~")
"""Names left out of directory listings by default (they stay reachable by path)."""


class ContentsSettings(PluginSettings):
    """How the contents API reads, writes, lists and deletes files under ``root_dir``."""

    allow_hidden: bool = Field(
        False,
        description="Serve dot-files and dot-directories. When off they are 404 on read, 400 "
        "on write and left out of listings.",
    )
    hide_globs: list[str] = Field(
        default_factory=lambda: list(DEFAULT_HIDE_GLOBS),
        description="Glob patterns of names left out of directory listings (still reachable "
        "by path).",
    )
    delete_to_trash: bool = Field(
        True,
        description="Move deleted files and directories to the desktop trash (needs "
        "send2trash) instead of removing them.",
    )
    always_delete_dir: bool = Field(
        False,
        description="Permanently delete non-empty directories when the trash is off or "
        "unavailable; otherwise such deletes are refused.",
    )
    max_copy_folder_size_mb: int = Field(
        500, ge=0, description="Largest directory (total file size, MiB) that may be copied."
    )
    untitled_file: str = Field("untitled", description="Base name of new untitled files.")
    untitled_notebook: str = Field("Untitled", description="Base name of new notebooks.")
    untitled_directory: str = Field(
        "Untitled Folder", description="Base name of new untitled directories."
    )
    max_page_size: int = Field(
        10_000,
        ge=1,
        description="Largest 'limit' accepted when a directory listing is paginated.",
    )
    max_read_mb: int = Field(
        512,
        ge=1,
        description="Largest file (MiB) returned whole in a contents model, or hashed "
        "(hash=1); larger files are read in ranges (offset/length) or from /files.",
    )
    max_body_mb: int = Field(
        512, ge=1, description="Largest JSON request body (MiB) the contents API accepts."
    )
    upload_idle_timeout: float = Field(
        3600.0,
        gt=0,
        description="Seconds a chunked upload may wait for its next chunk before it is "
        "discarded (the target file is untouched until the last chunk).",
    )
    fsync: bool = Field(
        True,
        description="Flush saved files and their directory to disk before reporting success.",
    )
    notary_dir: Path | None = Field(
        None,
        description="Directory of the notebook-signing secret (notebook_secret) and the "
        "signatures of trusted notebooks (nbsignatures.db). Default: Junction's data "
        "directory, <jupyter data dir>/junction.",
    )
    listing_cache_dirs: int = Field(
        16,
        ge=0,
        description="How many large directories (1000+ entries) keep their sorted name list "
        "in memory between paginated requests; 0 turns the cache off.",
    )
    inline_read_bytes: int = Field(
        65536,
        ge=0,
        description="Files up to this size (bytes, not notebooks) are read on the event loop "
        "instead of a worker thread when the root is on a local filesystem (ext4, xfs, btrfs, "
        "tmpfs, overlay, ...): from the page cache that is cheaper than the thread hop. "
        "Network filesystems always use threads; 0 turns inline reads off.",
    )
