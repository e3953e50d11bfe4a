"""What ``kubevc-gen validate`` found: findings by region and check, and the table it prints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

CHECKS = ("kustomize", "flux", "helm", "schema", "checkov", "secrets")
SHARED = "(shared)"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Finding:
    region: str
    check: str
    file: str
    obj: str
    message: str

    def __str__(self) -> str:
        return f"{self.region}: {self.check}: {self.file}: {self.obj}: {self.message}"


@dataclass
class Report:
    regions: list[str]
    findings: list[Finding] = field(default_factory=list)
    checked: dict[tuple[str, str], int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)  # regions whose results came from the cache

    def add(self, region: str, check: str, file: str, obj: str, message: str) -> None:
        self.findings.append(Finding(region, check, file, obj, message))

    def count(self, region: str, check: str, n: int = 1) -> None:
        self.checked[(region, check)] = self.checked.get((region, check), 0) + n


def print_report(report: Report, console: Any) -> None:
    for finding in report.findings:
        console.print(f"[red]✗[/red] {finding}", highlight=False, soft_wrap=True)
    for note in report.notes:
        console.print(f"[dim]note: {note}[/dim]", highlight=False, soft_wrap=True)
    table = Table(title="kubevc-gen validate")
    table.add_column("region")
    for check in ("spec", *CHECKS):
        table.add_column(check)
    regions = list(report.regions)
    if any(f.region == SHARED for f in report.findings):
        regions.append(SHARED)
    for region in regions:
        row = [region]
        for check in ("spec", *CHECKS):
            bad = sum(1 for f in report.findings if f.region == region and f.check == check)
            n = report.checked.get((region, check), 0)
            if bad:
                row.append(f"[red]{bad} finding(s)[/red]")
            elif check == "spec":
                row.append("[green]ok[/green]")
            else:
                row.append(f"[green]ok[/green] ({n})" if n else "-")
        table.add_row(*row)
    console.print(table)
    total = len(report.findings)
    console.print(f"[red]{total} finding(s)[/red]" if total else "[green]no findings[/green]")
