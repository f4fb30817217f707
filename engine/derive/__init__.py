"""Derivatives of a recorded graph: the request kinds, over one point or many, dense or sparse."""
