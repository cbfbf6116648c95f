"""stgan: GANs for gridded spatiotemporal data, judged by domain metrics."""

__version__ = "0.1.0"
