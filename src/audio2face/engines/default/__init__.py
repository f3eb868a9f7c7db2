"""engines/default"""
