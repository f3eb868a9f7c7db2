"""Phoneme-driven animation: phone set, visemes and the coarticulation synthesiser."""
