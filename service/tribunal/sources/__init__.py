"""Ways evidence arrives: files (``tribunal judge``); webhook, Kafka and HTTP ingest follow."""

from tribunal.sources.files import Document, expand_paths, read_documents, read_evidence

__all__ = ["Document", "expand_paths", "read_documents", "read_evidence"]
