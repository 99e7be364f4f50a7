"""The WhatsApp boundary: the worker child process, its wire protocol and its two backends (neonize, simulator)."""
