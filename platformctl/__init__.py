"""platformctl: compare what runs on Docker hosts with what a platform repository declares."""

__version__ = "0.1.0"
