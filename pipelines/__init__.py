"""Feedback Lens pipeline: everything that is not UI.

Data flows one way: file -> ``ingest`` -> ``clean`` -> ``embed`` -> ``topics`` /
``sentiment`` -> ``store`` publishes a run. Importing this package has no side effects.
"""

__version__ = "0.1.0"
