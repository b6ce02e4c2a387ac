"""Slice ops and blocks that run any sub-configuration of a shared weight."""

from .slice import BatchNorm2dSlice, Conv2dSlice, LinearSlice, Resize, ResizeSlice

__all__ = ["BatchNorm2dSlice", "Conv2dSlice", "LinearSlice", "Resize", "ResizeSlice"]
