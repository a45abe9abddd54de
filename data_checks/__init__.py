"""Checks on landing data, made before anything reaches the warehouse's marts."""
