"""Reported tensions as routed actions for council and police teams: routing rules, team
messages, acknowledgement, updates, escalation of unacknowledged actions, admin alerts and the
reporter's notices."""
