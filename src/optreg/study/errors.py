"""The error a config that cannot describe a study raises."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config that cannot describe a study; the message names the offending key."""
