"""Worked examples: small programs that use offsetdb only through its public driver API.

``orders`` is an online shop under concurrent orders (``offsetdb demo`` runs it);
``order_totals`` is a faust-streaming agent keeping each customer's total from the
shop's CDC topic (``offsetdb cdc``).
"""
