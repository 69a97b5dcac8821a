"""signbest: BEST (Zhao et al., AAAI 2023) for isolated sign language recognition."""
__version__ = "0.2.0"
