"""Notifiers: Airflow telling a person something, through Fuse."""
