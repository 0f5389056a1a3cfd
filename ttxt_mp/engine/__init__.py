"""The engine: supervisor, control channel and naming of shared objects."""
