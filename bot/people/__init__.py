"""People: import and onboarding (invites, linking), roles and wards, retention, erasure and
subject access."""
