"""Utilities (``chainrule.utils``): ``chainrule.utils.data`` loads data for training."""

from chainrule.utils import data

__all__ = ["data"]
