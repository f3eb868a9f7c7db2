"""Engines: loaded models (default, UniTalker, phonemes) and their per-stream state.

Each engine declares what it can do in :class:`~audio2face.types.EngineCapabilities`;
``loading.py`` builds them from settings, the one module here that reads them.

Internal: part of the implementation, not of the public API (``audio2face/__init__.py``);
names here may change between releases.
"""
