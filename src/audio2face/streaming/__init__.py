"""Streaming: the stream runner (inbox, batching, re-chunking), the session (frame
clock, resampling, emotion timeline) and the schedulers of non-streaming models.

Takes small frozen option objects, never the service settings.

Internal: part of the implementation, not of the public API (``audio2face/__init__.py``);
names here may change between releases.
"""
