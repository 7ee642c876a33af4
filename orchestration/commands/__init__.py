"""The commands a person starts and waits on: run, backfill, score, the champion summary, screenshots."""
