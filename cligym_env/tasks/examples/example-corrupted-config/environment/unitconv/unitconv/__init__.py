"""Small unit and money formatting helpers."""

SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}


def format_money(amount: float, currency: str) -> str:
    return f"{SYMBOLS.get(currency, currency + ' ')}{amount:,.2f}"
