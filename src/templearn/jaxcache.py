"""JAX's persistent compilation cache, so repeated runs of a stage skip XLA compilation.

A pipeline runs the same stage many times with the same shapes (one simulation per
acquisition, one training per resume); on CPU, compiling a U-Net train step or the image
formation costs seconds to minutes. The cache lives in `$TEMPLEARN_JAX_CACHE`, default
`~/.cache/templearn/jax`; set the variable to an empty string to turn it off.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path | None:
    """The cache's directory, or None when the cache is turned off."""
    directory = os.environ.get("TEMPLEARN_JAX_CACHE",
                               str(Path.home() / ".cache" / "templearn" / "jax"))
    return Path(directory) if directory else None


def enable_compilation_cache() -> None:
    """Point JAX at the persistent cache (cheap; call before the first compilation)."""
    directory = cache_dir()
    if directory is None:
        return
    import jax

    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
