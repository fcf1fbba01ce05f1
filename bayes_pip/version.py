"""The package version, stored with every output."""

__version__ = "0.1.0"
