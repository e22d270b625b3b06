"""Pterodisbot's rooms. ``pterodisbot.py`` is the entry point; this package holds the rest.

Data flows one way: panel (REST or Wings) -> source -> board (decides) -> cards (renders) -> Discord.
"""
