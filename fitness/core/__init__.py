"""Plumbing the apps share (no models, imports no app): request throttles, task options."""
