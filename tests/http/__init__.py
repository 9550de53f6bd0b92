"""Helpers that drive a gateway as a real process over HTTP (no tests here): `server`
starts one on a config file, `wire` sends raw per-dialect requests, `processes` runs
several on one database. The tests sit in the folders of the wings they test."""
