"""Use cases: people and onboarding, forms, campaigns, conversations, the outbox.

Each service takes its collaborators explicitly (config, unit-of-work factory, clock) and opens one
unit of work per call. Services never send anything themselves: they put messages in the outbox
and wake the dispatcher.
"""
