"""leadchat's performance benchmark: `make bench` (see bench/run.py and the README)."""
