"""Hostile input: media, requests, URLs, chat, and secrets in logs."""
