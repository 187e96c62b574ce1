"""Websockets server and the static browser page."""
