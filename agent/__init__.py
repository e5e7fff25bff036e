from baomi.common import __version__

__all__ = ["__version__"]
