"""The store: per-core NeXus files (archive) and a Zarr v3 hub (analysis), in generations."""
