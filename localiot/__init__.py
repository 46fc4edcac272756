"""localiot: the AWS IoT service family on one machine."""

__version__ = "0.1.0"
