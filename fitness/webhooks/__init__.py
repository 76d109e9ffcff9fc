"""Webhooks: signed POSTs to the user's URLs when a session is counted (``session.done``) or
fails (``session.failed``). Builds on workouts (its ``session_finished`` signal); workouts
imports nothing of it."""
