"""Compatibility import: the trainer lives in robopg/runners/ (``from robopg.runners import Trainer``)."""

from robopg.runners import Trainer

__all__ = ["Trainer"]
