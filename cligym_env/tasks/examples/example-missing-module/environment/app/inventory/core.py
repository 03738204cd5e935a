import configparser
import json
from pathlib import Path

SETTINGS = Path("/etc/inventory/settings.ini")


def load_settings(path: Path = SETTINGS) -> dict[str, str]:
    parser = configparser.ConfigParser()
    parser.read_string(path.read_text())
    return dict(parser["inventory"])


class Inventory:
    def __init__(self, items: dict[str, tuple[int, float]] | None = None) -> None:
        self.items = dict(items or {})

    def add(self, name: str, count: int, price: float) -> None:
        old_count, _ = self.items.get(name, (0, price))
        self.items[name] = (old_count + count, price)

    def total(self) -> float:
        return sum(count * price for count, price in self.items.values())

    def report(self) -> str:
        from unitconv import format_money  # only reports need money formatting

        currency = load_settings()["currency"]
        lines = [f"{name}: {count} x {format_money(price, currency)}" for name, (count, price) in sorted(self.items.items())]
        return "\n".join(lines + [f"total: {format_money(self.total(), currency)}"])


def main() -> None:
    import sys
    items = json.load(sys.stdin) if not sys.stdin.isatty() else {}
    print(Inventory({k: tuple(v) for k, v in items.items()}).report())
