"""PACT (Partners and Communities Together) meetings: scheduling, attendance, priorities, the
chairs' recordings in chat, and the attendance analysis (which times and venues draw people)."""
