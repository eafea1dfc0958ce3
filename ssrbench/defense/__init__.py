"""Test-time defenses. The reverse attack is the one this benchmark studies."""
