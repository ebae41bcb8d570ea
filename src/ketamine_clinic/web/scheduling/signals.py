"""What the scheduling area announces, for the areas above it to act on without scheduling
importing them (``DEVELOPERS.md``, "Where code may import from")."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the booking's transaction with ``visits`` (the visits just booked or moved),
# so what a receiver writes or queues is rolled back with a failed booking. The reminders
# area queues the visits' reminders.
visits_booked = Signal()
