"""The declared state: module manifests, compose stacks and image references."""
