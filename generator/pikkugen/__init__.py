"""pikkugen: finds queue processors statically and generates typed clients and wiring."""

__version__ = "0.1.0"
