"""Versioned leaderboard files: schema, atomic load/save with migration, rich rendering."""
