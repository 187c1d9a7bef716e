"""dsslab: train on an adaptively chosen subset of the data."""

__version__ = "0.1.0"
