"""The monthly return and urgent reports: campaigns (open, remind, close), crisis cadences, the
guided conversation, reports and their references, form versions and working-day deadlines.

When do reminders go out? `schedule.*` in the config; `campaigns.CampaignService.tick` (called by
the scheduler) acts on it."""
