"""Offline demo x402 seller (see demo/server.py)."""
