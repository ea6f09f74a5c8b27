"""Implementations of the estimators outside the C++ core (``backend='torch'``)."""
