"""Command-line front ends: terminal chat, persona, model and memory commands."""
