"""Training corpus builder: synthetic and recorded speech with unified phone timings."""
