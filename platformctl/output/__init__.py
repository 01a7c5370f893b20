"""The output stage: every human-readable and JSON rendering, one module per command family.

``text`` holds what every human-readable output shares (the sanitizer for strings a host or a
repository controls, the table layout, short digests, durations); ``hosts`` the one host
serialiser; ``drift_check``, ``collect``, ``snapshots`` and ``history`` render their commands.
Renderers take values and return text; they never read the store or the network.
"""
