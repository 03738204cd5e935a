import json
import subprocess

from inventory import Inventory, load_settings


def test_total():
    stock = Inventory()
    stock.add("bolt", 10, 0.25)
    stock.add("nut", 4, 0.5)
    assert stock.total() == 4.5


def test_add_accumulates():
    stock = Inventory()
    stock.add("bolt", 1, 0.25)
    stock.add("bolt", 2, 0.25)
    assert stock.items["bolt"] == (3, 0.25)


def test_settings():
    assert load_settings()["currency"] == "EUR"


def test_report():
    stock = Inventory({"bolt": (10, 0.25)})
    assert stock.report().splitlines() == ["bolt: 10 x €0.25", "total: €2.50"]


def test_report_command():
    run = subprocess.run(["/app/bin/inventory-report"], input=json.dumps({"nut": [4, 0.5]}),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["nut: 4 x €0.50", "total: €2.00"]
