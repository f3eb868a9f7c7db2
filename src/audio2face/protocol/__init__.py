"""Wire protocols: v1 (protobuf, wire-compatible with the original service).

Internal: part of the implementation, not of the public API (``audio2face/__init__.py``);
names here may change between releases.
"""
