"""Worked examples: small programs that use offsetdb only through its public driver API.

``orders`` is an online shop under concurrent orders (``offsetdb demo`` runs it).
"""
