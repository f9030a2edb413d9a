"""Face reenactment models: landmarks, landmark transformer, generators, offline tools.

Runs without any web stack; `server` imports this package, never the reverse.
"""
