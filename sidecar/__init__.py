"""FormRelay sidecar: delivers WPForms submissions to a partner API."""

__version__ = "0.1.0"
