"""Simulation for the demo and the tests: a local fake Telegram Bot API server, a simulated world
(the real bot wired to it and to a fake clock) and scripted simulated reporters."""
