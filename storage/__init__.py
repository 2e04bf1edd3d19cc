"""Storage: SQLAlchemy 2 (async) tables, mappers, repositories, unit of work, Alembic migrations.

Domain dataclasses from :mod:`bot.domain` are mapped imperatively onto the tables here, so the
core never imports SQLAlchemy.
"""
