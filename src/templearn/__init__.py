"""templearn: particle picking in cryo-ET tomograms learned from atomic templates."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("templearn")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"
