"""Wire protocols: v1 (protobuf, wire-compatible with the original service)."""
