"""The snapshot store: every collection, remembered so it can be replayed and compared."""
